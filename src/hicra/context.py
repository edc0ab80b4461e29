"""Whether prompts fit a model's context, checked before any generation starts.

A prompt longer than the model's context does not fail inside transformers: it is generated from
anyway, at a cost that grows with the square of its length (a 100 kB question kept `hicra eval` busy
for over a minute on a tiny model, and Ctrl-C waited for it), at positions the model was never
trained on. So `hicra eval` and `hicra train` count each prompt's tokens first and refuse the rows
whose prompt and new tokens do not fit, naming the first such row and how many there are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hicra.errors import HicraError

# config fields that hold the context length, first found wins (GPT-2: n_positions, ...)
_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


class ContextError(HicraError):
    """Prompts too long for the model's context: the message names the first row and the count."""


@dataclass(frozen=True)
class ContextFit:
    """What prompts must fit: `context` tokens, leaving room for `new_tokens` generated ones
    (named by `new_tokens_flag` in messages); `tokenizer` counts the prompts, rendered with
    `chat_template` (a VLM processor's own), as content blocks when `blocks`."""

    tokenizer: Any
    context: int | None
    new_tokens: int
    new_tokens_flag: str
    chat_template: str | None = None
    blocks: bool = False


def context_length(model: str | os.PathLike[str]) -> int | None:
    """The model's context in tokens from its config (a VLM's text model), or None when unknown.

    YaRN rope scaling stretches the context by its factor (as vLLM counts it); other rope
    scalings already state the stretched length in `max_position_embeddings`.
    """
    from hicra.models import BUNDLED, _config_of, resolve_model_path

    try:
        if str(model) in BUNDLED:  # an alias: its converted folder has the config
            model = resolve_model_path(model)
        config = _config_of(model)
    except HicraError:
        return None
    config = getattr(config, "text_config", None) or config
    if config is None:
        return None
    length = next(
        (getattr(config, f) for f in _CONTEXT_FIELDS if isinstance(getattr(config, f, None), int)),
        None,
    )
    if length is None:
        return None
    scaling = getattr(config, "rope_scaling", None) or {}
    if isinstance(scaling, dict) and scaling.get("rope_type", scaling.get("type")) == "yarn":
        original = scaling.get("original_max_position_embeddings") or length
        length = max(length, int(original * float(scaling.get("factor", 1.0))))
    return int(length)


def new_tokens_that_fit(longest_prompt: int, context: int | None, wanted: int) -> int:
    """The default completion limit: `wanted`, lowered to what the context leaves after the
    longest prompt (a 4k-context model gets 4,096 minus its longest prompt, not an error). An
    unknown context keeps `wanted`; no room at all gives 1, which check_prompt_lengths refuses
    with the row that does not fit."""
    if context is None:
        return wanted
    return max(1, min(wanted, context - longest_prompt))


def check_prompt_lengths(
    lengths: Iterable[tuple[int, str]],
    context: int | None,
    new_tokens: int,
    new_tokens_flag: str,
) -> None:
    """Refuse prompts that leave no room for `new_tokens` in `context` tokens.

    `lengths` holds (prompt tokens, where: "FILE, line N"); `new_tokens_flag` names the setting
    of `new_tokens` ("--max-new-tokens"). A context of None (unknown) checks nothing.
    """
    if context is None:
        return
    if new_tokens >= context:
        raise ContextError(
            f"{new_tokens_flag} {new_tokens:,} leaves no room for a prompt in the model's context "
            f"of {context:,} tokens; lower it"
        )
    room = context - new_tokens
    too_long = [(n, where) for n, where in lengths if n > room]
    if not too_long:
        return
    tokens, where = too_long[0]
    count = f"{len(too_long)} prompts do not" if len(too_long) > 1 else "a prompt does not"
    raise ContextError(
        f"{count} fit the model's context of {context:,} tokens with {new_tokens_flag} "
        f"{new_tokens:,}: the prompt of {where}, is {tokens:,} tokens (at most {room:,} fit); "
        f"shorten or remove such rows, lower {new_tokens_flag}, or use a model with a longer "
        "context"
    )


def prompt_token_counts(
    tokenizer: Any, conversations: list[list[dict[str, Any]]], chat_template: str | None = None
) -> list[int]:
    """Token counts of chat prompts as the model sees them (template and generation prompt)."""
    if not conversations:
        return []
    ids = tokenizer.apply_chat_template(
        conversations,
        chat_template=chat_template,
        tokenize=True,
        add_generation_prompt=True,
        return_dict=False,
    )
    return [len(row) for row in ids]


# Tokens a prompt may have beyond its UTF-8 bytes: a BOS/EOS added by the tokenizer, and the
# "prefix space" piece of SentencePiece-style tokenizers (one token for no byte of input).
_SLACK_TOKENS = 3


def long_prompts(
    fit: ContextFit,
    questions: list[str],
    conversation: Callable[[str], list[dict[str, Any]]],
) -> list[tuple[int, int]]:
    """(row index, prompt tokens) of the prompts that leave no room for `fit.new_tokens`.

    Only prompts that could be too long are tokenized: every token covers at least one byte of
    text (special tokens many), so a prompt whose template bytes (measured once, around a
    one-character question) plus its question's UTF-8 bytes plus a small slack fit the room
    cannot be longer in tokens. Typical datasets are then checked without tokenizing anything.
    """
    if fit.context is None:
        return []
    room = fit.context - fit.new_tokens
    template = fit.tokenizer.apply_chat_template(
        conversation("x"),
        chat_template=fit.chat_template,
        tokenize=False,
        add_generation_prompt=True,
    )
    overhead = len(template.encode("utf-8")) - 1 + _SLACK_TOKENS
    maybe = [i for i, q in enumerate(questions) if overhead + len(q.encode("utf-8")) > room]
    counts = prompt_token_counts(
        fit.tokenizer, [conversation(questions[i]) for i in maybe], fit.chat_template
    )
    return [(i, n) for i, n in zip(maybe, counts, strict=True) if n > room]
