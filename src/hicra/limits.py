"""Every numeric option's allowed range, in one place, checked before anything heavy is loaded.

TRL and transformers silently reinterpret some values (`max_steps: -5` trains three epochs,
`max_steps: 0` one step) and reject others deep inside a run (`num_generations: 0` is a division
by zero). `check_limits` turns every such value into one line that names the flag and the range.
`hicra train` checks the raw YAML and flag values with it before importing TRL (so a bad number
fails in well under a second), and `HICRAConfig`/`TrainArgs`/`EvalConfig` check again when built,
for library users.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hicra.errors import HicraError


@dataclass(frozen=True)
class Limit:
    """A numeric range: low/high bounds (open or closed), whole numbers only, sentinel values."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    also: tuple[float, ...] = ()  # sentinels allowed outside the range (max_steps -1: by epochs)
    optional: bool = False  # None (unset) is allowed
    note: str = ""

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            left, right = ("(" if self.low_open else "["), (")" if self.high_open else "]")
            text = f"{kind} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {_num(self.low)}"
        elif self.high is not None:
            text = f"{kind} {'<' if self.high_open else '<='} {_num(self.high)}"
        else:
            text = f"a finite {kind[2:]}"
        if self.also:
            text += " (or " + ", ".join(_num(v) for v in self.also) + ")"
        return text

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed, or None when it is."""
        reason = self._problem(value)
        return f"{reason} ({self.note})" if reason and self.note else reason

    def _problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.optional else "is required"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be {self.describe()}, got {value!r}"
        if not math.isfinite(value):
            return f"must be {self.describe()}, got {value}"
        if value in self.also:
            return None
        if self.integer and value != int(value):
            return f"must be {self.describe()}, got {value}"
        too_low = self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        )
        too_high = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        if too_low or too_high:
            return f"must be {self.describe()}, got {_num(value)}"
        return None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


POSITIVE_INT = Limit(low=1, integer=True)
OPTIONAL_POSITIVE_INT = Limit(low=1, integer=True, optional=True)
NON_NEGATIVE_INT = Limit(low=0, integer=True)
POSITIVE = Limit(low=0, low_open=True)
NON_NEGATIVE = Limit(low=0)
FRACTION = Limit(low=0, high=1)
PROBABILITY_MASS = Limit(low=0, high=1, low_open=True)  # top_p: (0, 1]
FINITE = Limit()

TRAIN = {
    # steps, batches, lengths
    "max_steps": Limit(low=1, integer=True, also=(-1,), note="-1 trains num_train_epochs"),
    "num_train_epochs": POSITIVE,
    "per_device_train_batch_size": POSITIVE_INT,
    "per_device_eval_batch_size": POSITIVE_INT,
    "gradient_accumulation_steps": POSITIVE_INT,
    "num_generations": Limit(low=2, integer=True, note="a group needs 2 completions to compare"),
    "num_generations_eval": Limit(low=1, integer=True, optional=True),
    "steps_per_generation": OPTIONAL_POSITIVE_INT,
    "generation_batch_size": OPTIONAL_POSITIVE_INT,
    "num_iterations": POSITIVE_INT,
    "max_completion_length": POSITIVE_INT,
    "max_prompt_length": OPTIONAL_POSITIVE_INT,
    "logging_steps": POSITIVE,
    "save_steps": POSITIVE,
    "eval_steps": Limit(low=0, low_open=True, optional=True),
    "save_total_limit": OPTIONAL_POSITIVE_INT,
    # sampling
    "temperature": POSITIVE,
    "top_p": PROBABILITY_MASS,
    "top_k": Limit(low=0, integer=True, optional=True),
    "min_p": Limit(low=0, high=1, optional=True),
    "repetition_penalty": POSITIVE,
    # optimisation and loss
    "learning_rate": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "max_grad_norm": NON_NEGATIVE,
    "warmup_ratio": FRACTION,
    "warmup_steps": Limit(low=0),
    "beta": NON_NEGATIVE,
    "epsilon": POSITIVE,
    "epsilon_high": Limit(low=0, low_open=True, optional=True),
    "delta": Limit(low=0, low_open=True, optional=True),
    "top_entropy_quantile": Limit(low=0, high=1, low_open=True),
    "entropy_coef": FINITE,
    # hicra
    "hicra_alpha": Limit(low=0, high=1, high_open=True, note="0.2 in the paper"),
    "fork_quantile": Limit(low=0, high=1, high_open=True, note="0.7: the top 30%"),
    "rollouts_per_step": NON_NEGATIVE_INT,
    "eval_limit": OPTIONAL_POSITIVE_INT,
    "eval_samples": POSITIVE_INT,
    "eval_temperature": Limit(low=0, optional=True, note="0 is greedy"),
    "eval_max_new_tokens": OPTIONAL_POSITIVE_INT,
    # data, rewards, LoRA
    "dataset_size": POSITIVE_INT,
    "dataset_limit": OPTIONAL_POSITIVE_INT,
    "accuracy_weight": FINITE,
    "format_weight": FINITE,
    "reward_corruption": FRACTION,
    "verify_timeout": POSITIVE,
    "verify_workers": POSITIVE_INT,
    "lora_r": NON_NEGATIVE_INT,
    "lora_alpha": POSITIVE,
    "lora_dropout": Limit(low=0, high=1, high_open=True),
}

EVAL = {
    "samples": OPTIONAL_POSITIVE_INT,
    "temperature": Limit(low=0, note="0 is greedy"),
    "top_p": PROBABILITY_MASS,
    "max_new_tokens": OPTIONAL_POSITIVE_INT,  # None: what the model's context leaves (eval)
    "limit": OPTIONAL_POSITIVE_INT,
    "batch_size": OPTIONAL_POSITIVE_INT,
    "verify_timeout": POSITIVE,
    "verify_workers": POSITIVE_INT,
}

# flag spellings that are not --name-with-dashes
TRAIN_ALIASES = {"alpha": "hicra_alpha"}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_limits(
    values: Mapping[str, Any],
    limits: Mapping[str, Limit],
    where: str = "",
    style: Literal["flag", "key"] = "flag",
) -> None:
    """Raise HicraError for the first value outside its limit (checked in `limits` order).

    The message names the flag (`--max-steps`) or, with style="key", the config key
    (`max_steps`), after `where` (a file) when given.
    """
    for name in (n for n in limits if n in values):
        problem = limits[name].problem(values[name])
        if problem:
            prefix = f"{where}: " if where else ""
            label = flag(name) if style == "flag" else name
            raise HicraError(f"{prefix}{label} {problem}")


def parse_number(text: str) -> float | int | str:
    """A command-line or YAML string as the number it spells (NaN and inf included), else as is."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
