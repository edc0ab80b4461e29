"""Sampling completions for evaluation: batched Hugging Face generation, or vLLM on a GPU.

Both backends take the same requests (prompt token ids and a sample count) and return the same
completions (text, generated token count, finish reason), so results do not depend on the backend
beyond sampling noise. Prompts are token ids built once by `encode_prompt`, so neither backend adds
a second BOS token to a chat-templated prompt.

The HF backend sorts rows by prompt length, left-pads each batch and generates with the KV cache;
it replaces the model's generation defaults (a hub config may carry top_k, repetition penalties)
with exactly the requested temperature and top-p, as vLLM does with explicit sampling parameters.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from hicra.errors import HicraError
from hicra.limits import EVAL as EVAL_LIMITS
from hicra.limits import check_limits
from hicra.models import ModelError, load_model, load_tokenizer, torch_dtype
from hicra.prompts import PromptStyle, user_prompt

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingSettings:
    """What decides a completion's distribution (temperature 0 means greedy)."""

    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        values = {"temperature": self.temperature, "top_p": self.top_p}
        check_limits({**values, "max_new_tokens": self.max_new_tokens}, EVAL_LIMITS)


@dataclass(frozen=True)
class Request:
    """Sample `n` completions of one prompt; `key` names it (the HF backend seeds from it).

    A vision-language prompt also carries its `images` and `question`: the vision backends build
    the prompt from them with the model's processor (`prompt_ids` is then the text-only prompt).
    """

    prompt_ids: list[int]
    n: int
    key: str = ""
    images: tuple[Any, ...] = ()
    question: str = ""
    style: PromptStyle | None = None  # how the vision backends ask (`prompt_ids` has it already)


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int  # generated tokens, the stop token included
    finish_reason: FinishReason


class Backend(Protocol):
    name: str
    chunk_rows: int  # how many completions the runner hands over at once

    def generate(
        self, requests: Sequence[Request], settings: SamplingSettings
    ) -> list[list[Completion]]: ...


# --------------------------------------------------------------------------- prompts and models
def encode_prompt(tokenizer: Any, question: str, style: PromptStyle | None = None) -> list[int]:
    """Token ids of the chat-templated prompt (plain text when there is no chat template).

    The default style is the paper's: one user turn, the question and the boxed instruction;
    a trained run's own style (system prompt, few-shot turns) asks it as it was trained.
    """
    style = style or PromptStyle()
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            style.messages(question), tokenize=False, add_generation_prompt=True
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    content = user_prompt(question, style.instruction)
    if style.system_prompt or style.few_shot:
        turns = [style.system_prompt or ""] + [
            f"{user_prompt(q, style.instruction)}\n\n{a}" for q, a in style.few_shot
        ]
        content = "\n\n".join([*(x for x in turns if x), content])
    return list(tokenizer(content + "\n\n")["input_ids"])


def prompt_format(tokenizer: Any) -> str:
    return "chat" if getattr(tokenizer, "chat_template", None) else "plain"


def load_eval_tokenizer(path: str) -> Any:
    try:
        return load_tokenizer(path)
    except HicraError:
        raise
    except Exception as err:  # a broken folder fails deep inside transformers: say which one
        raise ModelError(
            f"cannot load the tokenizer of {path!r}: {type(err).__name__}: {str(err)[:300]}"
        ) from None


# --------------------------------------------------------------------------- backend choice
def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# --------------------------------------------------------------------------- Hugging Face
class HFBackend:
    """Batched `model.generate` with left padding and the KV cache."""

    name = "hf"

    def __init__(self, model: Any, tokenizer: Any, batch_size: int | None = None) -> None:
        from transformers import GenerationConfig

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.batch_size = batch_size or (64 if self.device.type == "cuda" else 16)
        if self.batch_size < 1:
            raise HicraError(f"--batch-size must be at least 1, got {self.batch_size}")
        self.chunk_rows = self.batch_size
        eos = self._eos_ids(model, tokenizer)
        if not eos:
            raise ModelError("the model and tokenizer define no end-of-sequence token")
        self.eos_ids = eos
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
        # Only the token ids survive from the checkpoint's generation defaults: sampling is
        # exactly what the evaluation asks for (no hidden top_k or repetition penalty).
        model.generation_config = GenerationConfig(
            eos_token_id=eos, pad_token_id=self.pad_id, bos_token_id=tokenizer.bos_token_id
        )

    @classmethod
    def from_path(
        cls, path: str, tokenizer: Any, batch_size: int | None = None, dtype: str = "auto"
    ) -> HFBackend:
        device = "cuda" if cuda_available() else "cpu"
        try:
            model = load_model(path, dtype=torch_dtype(dtype, device))
        except HicraError:
            raise
        except Exception as err:
            raise ModelError(
                f"cannot load the model in {path!r}: {type(err).__name__}: {str(err)[:300]}"
            ) from None
        return cls(model.to(device), tokenizer, batch_size)

    @staticmethod
    def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
        ids: list[int] = []
        configured = getattr(model.generation_config, "eos_token_id", None)
        for value in (configured, tokenizer.eos_token_id):
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if item is not None and int(item) not in ids:
                    ids.append(int(item))
        return ids

    def generate(
        self, requests: Sequence[Request], settings: SamplingSettings
    ) -> list[list[Completion]]:
        rows = [(r, s) for r, req in enumerate(requests) for s in range(req.n)]
        rows.sort(key=lambda rs: len(requests[rs[0]].prompt_ids))  # similar lengths pad less
        out: list[list[Completion | None]] = [[None] * req.n for req in requests]
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            prompts = [requests[r] for r, _ in batch]
            seed_key = f"{settings.seed}|{requests[batch[0][0]].key}|{batch[0][1]}|{len(batch)}"
            for (r, s), completion in zip(
                batch, self._generate_batch(prompts, settings, seed_key), strict=True
            ):
                out[r][s] = completion
        return [[c for c in row if c is not None] for row in out]

    def _model_inputs(self, requests: list[Request]) -> dict[str, Any]:
        """Left-padded token ids and attention mask: every prompt ends at the same column."""
        import torch

        prompts = [r.prompt_ids for r in requests]
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, ids in enumerate(prompts):
            input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[i, width - len(ids) :] = 1
        return {"input_ids": input_ids, "attention_mask": attention}

    def _generate_batch(
        self, requests: list[Request], settings: SamplingSettings, seed_key: str
    ) -> list[Completion]:
        import torch
        from transformers import GenerationConfig

        inputs = self._model_inputs(requests)
        width = inputs["input_ids"].size(1)
        sample = settings.temperature > 0
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            do_sample=sample,
            temperature=settings.temperature if sample else None,
            top_p=settings.top_p if sample else None,
            top_k=0 if sample else None,
            use_cache=True,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        torch.manual_seed(zlib.crc32(seed_key.encode()))
        with torch.inference_mode():
            output = self.model.generate(
                **{k: v.to(self.device) for k, v in inputs.items()}, generation_config=config
            )
        generated = output[:, width:].tolist()
        return [self._completion(ids) for ids in generated]

    def _completion(self, ids: list[int]) -> Completion:
        eos = set(self.eos_ids)
        stop = next((i for i, token in enumerate(ids) if token in eos), None)
        kept = ids if stop is None else ids[:stop]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        if stop is None:
            return Completion(text, len(ids), "length")
        return Completion(text, stop + 1, "stop")


# --------------------------------------------------------------------------- vLLM
class VLLMBackend:
    """vLLM's offline engine; each request asks for its n samples in one SamplingParams.

    The engine is seeded once (`LLM(seed=...)`); per-request seeds are left out on purpose, since
    how they combine with n > 1 differs between vLLM versions.
    """

    name = "vllm"
    chunk_rows = 4096

    def __init__(self, model_path: str, dtype: str = "auto", seed: int = 0, **engine: Any) -> None:
        try:
            from vllm import LLM
        except ImportError as err:
            raise HicraError(f"vLLM cannot be imported ({err}); use --backend hf") from None
        try:
            self.llm = LLM(
                model=model_path, dtype=dtype, seed=seed, trust_remote_code=False, **engine
            )
        except Exception as err:
            raise ModelError(
                f"vLLM cannot load the model in {model_path!r}: {type(err).__name__}: "
                f"{str(err)[:300]}"
            ) from None

    def _prompts(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        return [{"prompt_token_ids": req.prompt_ids} for req in requests]

    def generate(
        self, requests: Sequence[Request], settings: SamplingSettings
    ) -> list[list[Completion]]:
        from vllm import SamplingParams

        sample = settings.temperature > 0
        params = [
            SamplingParams(
                n=req.n,
                temperature=settings.temperature,
                top_p=settings.top_p if sample else 1.0,
                top_k=-1,
                max_tokens=settings.max_new_tokens,
            )
            for req in requests
        ]
        outputs = self.llm.generate(self._prompts(requests), params, use_tqdm=False)
        return [
            [
                Completion(
                    o.text,
                    len(o.token_ids),
                    "length" if o.finish_reason == "length" else "stop",
                )
                for o in out.outputs
            ]
            for out in outputs
        ]
