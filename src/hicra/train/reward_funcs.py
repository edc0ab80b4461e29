"""`hicra train --reward-funcs SPEC [SPEC ...]`: rewards named as TRL names them, checked twice.

A SPEC is a built-in name (TRL's `accuracy_reward`, `reasoning_accuracy_reward`,
`think_format_reward`, `get_soft_overlong_punishment`; hicra's `accuracy`, `format`), a dotted
import path (`my_lib.rewards.score`, importable from the working folder, as `trl grpo` takes it)
or `path/to/file.py:function` (`hicra.user_code`). A reward function has TRL's signature,
`f(prompts, completions, **kwargs) -> list[float | None]`, and gets the dataset's columns as
keyword arguments (plus TRL's `completion_ids`, `trainer_state`, `log_extra`, `log_metric`).

Checked before any model loads: the SPEC imports, the function exists, its signature takes TRL's
call with this dataset's columns, and a dry call on the first row (with an empty completion, which
a model can produce) returns one number or None. Checked again at every training call
(`CheckedReward`): a reward that raises, returns the wrong number of values, NaN or infinity, or
anything but numbers and None stops the run with one line naming the function, the row and what
is wrong, before the step is trained or logged.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hicra.errors import HicraError
from hicra.user_code import UserCodeError, check_call, function_name, load_function

TRL_BUILTINS = (
    "accuracy_reward",
    "reasoning_accuracy_reward",
    "think_format_reward",
    "get_soft_overlong_punishment",
)
HICRA_BUILTINS = ("accuracy", "format")
# TRL's own keyword arguments of a reward call: a dataset column of one of these names would clash.
TRL_CALL_KEYS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra",
                 "log_metric", "environments")  # fmt: skip


class RewardError(HicraError):
    """A reward function that cannot be used, or misbehaved during training (one line: the
    function, the row, what is wrong)."""


def _row_label(kwargs: dict[str, Any], index: int) -> str:
    ids = kwargs.get("id")
    if isinstance(ids, Sequence) and not isinstance(ids, str) and index < len(ids):
        return f"row id {ids[index]!r}"
    return f"completion {index + 1} of the batch"


def _clip(text: str, limit: int) -> str:
    text = text.splitlines()[0] if text.strip() else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CheckedReward:
    """A reward function that must behave: its output is checked at every call. Keeps the
    function's name (TRL logs `rewards/<name>/mean`) and the scores of its last call
    (`last_scores`), which the success signal reads."""

    def __init__(self, func: Callable[..., Any], spec: str) -> None:
        self.func = func
        self.spec = spec
        self.__name__ = function_name(func)
        self.is_async = _is_async(func)
        self.last_scores: list[float | None] = []

    def _call(self, **kwargs: Any) -> Any:
        result = self.func(**kwargs)
        if self.is_async:
            result = asyncio.run(result)
        return result

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[Any]:
        call = {"prompts": prompts, "completions": completions, **kwargs}
        try:
            out = self._call(**call)
        except HicraError:
            raise
        except Exception as err:
            raise self._raised(err, call) from None
        self.last_scores = self.check_output(out, len(completions), kwargs)
        return self.last_scores

    def _raised(self, err: Exception, call: dict[str, Any]) -> RewardError:
        """Which row makes it raise: the rows are retried one by one (only once it failed)."""
        n = len(call["completions"])
        for i in range(n):
            one = {k: _nth(v, i, n) for k, v in call.items()}
            try:
                self._call(**one)
            except Exception as row_err:
                return RewardError(
                    f"reward function {self.__name__!r} ({self.spec}) raised "
                    f"{type(row_err).__name__}: {_clip(str(row_err), 120)} on "
                    f"{_row_label(call, i)} (completion {_short(_text(call['completions'][i]))})"
                )
        return RewardError(
            f"reward function {self.__name__!r} ({self.spec}) raised {type(err).__name__}: "
            f"{_clip(str(err), 120)} on a batch of {n} completions (no single row raises alone)"
        )

    def check_output(self, out: Any, expected: int, kwargs: dict[str, Any]) -> list[float | None]:
        """The scores as floats (None kept: TRL's "no reward for this completion"), or one line
        saying what is wrong with them."""
        name = f"reward function {self.__name__!r} ({self.spec})"
        if isinstance(out, (str, bytes, dict)) or not hasattr(out, "__len__"):
            raise RewardError(
                f"{name} returned a {type(out).__name__}, not a list of {expected} numbers "
                "(one per completion)"
            )
        values = list(out)
        if len(values) != expected:
            raise RewardError(
                f"{name} returned {len(values)} values for {expected} completions: one per "
                "completion is needed"
            )
        scores: list[float | None] = []
        for i, value in enumerate(values):
            if value is None:
                scores.append(None)
                continue
            if hasattr(value, "item") and not isinstance(value, numbers.Number):
                value = value.item()  # a 0-d tensor or numpy value
            if isinstance(value, (str, bytes)) or not isinstance(value, numbers.Real):
                raise RewardError(
                    f"{name} returned {_short(value)} ({type(value).__name__}) for "
                    f"{_row_label(kwargs, i)}: a reward is a number, or None to skip it"
                )
            if not math.isfinite(float(value)):
                raise RewardError(
                    f"{name} returned {float(value)} for {_row_label(kwargs, i)}: a reward must "
                    "be a finite number (return None to give a completion no reward)"
                )
            scores.append(float(value))
        return scores


def _nth(value: Any, i: int, n: int) -> Any:
    """The i-th row of a batched keyword argument (columns are lists of n); others as they are."""
    if isinstance(value, list) and len(value) == n:
        return [value[i]]
    return value


def _text(completion: Any) -> str:
    from hicra.train.rewards import completion_text

    return completion_text(completion)


def _is_async(func: Any) -> bool:
    call = type(func).__call__ if not inspect.isroutine(func) else None
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call)


def _builtins(max_completion_length: int, hicra: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    def trl(name: str) -> Callable[[], Any]:
        def load() -> Any:
            import trl.rewards as rewards

            if name == "get_soft_overlong_punishment":  # a factory: the run's length, TRL's ratio
                return rewards.get_soft_overlong_punishment(
                    max_completion_len=max_completion_length,
                    soft_punish_cache=max(1, max_completion_length // 5),
                )
            return getattr(rewards, name)

        return load

    return {**hicra, **{n: trl(n) for n in TRL_BUILTINS}}


@dataclass
class RewardSet:
    """The rewards of a run in TRL's order (reward model first), and their weights."""

    funcs: list[Any]  # callables, or the reward model's path (TRL loads it)
    weights: list[float]
    names: list[str]


def dry_call_kwargs(row: dict[str, Any]) -> dict[str, Any]:
    """TRL's call for one row and an empty completion (what a model can always produce)."""
    from transformers import TrainerState

    prompt = row["prompt"]
    conversational = isinstance(prompt, list)
    completion: Any = [{"role": "assistant", "content": ""}] if conversational else ""
    columns = {k: [v] for k, v in row.items() if k not in ("prompt", "completion")}
    return {
        "prompts": [prompt],
        "completions": [completion],
        "completion_ids": [[]],
        **columns,
        "trainer_state": TrainerState(),
        "log_extra": lambda *a, **k: None,
        "log_metric": lambda *a, **k: None,
    }


def check_reward_model(path: str) -> str:
    """A reward model as TRL takes it: a sequence-classification model with one output."""
    from transformers import AutoConfig

    from hicra.models import resolve_model_path

    try:
        resolved = resolve_model_path(path)
        config = AutoConfig.from_pretrained(resolved)
    except HicraError as err:
        raise RewardError(f"reward model {path!r}: {err}") from None
    except Exception as err:
        raise RewardError(
            f"reward model {path!r}: cannot read its config ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200] if str(err) else ''})"
        ) from None
    architectures = config.architectures or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        kind = ", ".join(architectures) or "model without an architecture"
        raise RewardError(
            f"reward model {path!r} is a {kind}, not a sequence-classification model (TRL scores with "
            "AutoModelForSequenceClassification and its single logit; a causal LM would give "
            "random rewards)"
        )
    if config.num_labels != 1:
        raise RewardError(
            f"reward model {path!r} has {config.num_labels} labels; TRL takes the single logit of "
            "a model with num_labels=1"
        )
    return resolved


def build_reward_set(
    specs: Sequence[str] | None,
    reward_model: str | None,
    weights: Sequence[float] | None,
    hicra: dict[str, Callable[[], Any]],
    max_completion_length: int,
    first_row: dict[str, Any],
) -> RewardSet:
    """Load and check every reward before any model loads (see the module docstring)."""
    builtins = _builtins(max_completion_length, hicra)
    funcs: list[Any] = []
    names: list[str] = []
    if reward_model:
        resolved = check_reward_model(reward_model)
        funcs.append(resolved)
        names.append(resolved.rstrip("/").split("/")[-1])
    call = dry_call_kwargs(first_row)
    for spec in specs or []:
        try:
            func = load_function(spec, "reward function", builtins)
        except UserCodeError as err:
            raise RewardError(str(err)) from None
        name = function_name(func)
        if name in names:
            raise RewardError(
                f"reward function {spec!r}: two rewards are named {name!r}; TRL logs each "
                "under its name (rewards/NAME/mean) and --success-reward picks one by name: "
                "rename one"
            )
        if spec in HICRA_BUILTINS:  # hicra's own: known to take the call
            funcs.append(func)
            names.append(name)
            continue
        shown = f"TRL's {spec}" if spec in TRL_BUILTINS else spec
        checked = CheckedReward(func, shown)
        _dry_call(checked, call, first_row)
        funcs.append(checked)
        names.append(name)
    if not funcs:
        raise RewardError("reward_funcs is empty and no reward_model is given: nothing to score")
    if weights is None:
        weights = [1.0] * len(funcs)
    if len(weights) != len(funcs):
        order = ", ".join(names)
        raise RewardError(
            f"reward_weights has {len(weights)} values for {len(funcs)} rewards ({order}; a "
            "reward model comes first, as in TRL): give one weight per reward"
        )
    return RewardSet(funcs, [float(w) for w in weights], names)


def _dry_call(checked: CheckedReward, call: dict[str, Any], row: dict[str, Any]) -> None:
    columns = [k for k in call if k not in TRL_CALL_KEYS]
    try:
        check_call(checked.func, checked.spec, "reward function", call)
    except UserCodeError as err:
        raise RewardError(f"{err} (dataset columns: {', '.join(columns)})") from None
    where = f"the first row ({_row_label(call, 0)}) with an empty completion"
    try:
        out = checked._call(**call)
    except Exception as err:
        raise RewardError(
            f"reward function {checked.__name__!r} ({checked.spec}) raised "
            f"{type(err).__name__}: {_clip(str(err), 160)} on a dry call with {where}"
        ) from None
    try:
        checked.check_output(out, 1, call)
    except RewardError as err:
        raise RewardError(f"{err} (dry call with {where})") from None
