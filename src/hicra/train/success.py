"""The success signal: which reward says a completion is *correct*, for the hierarchy lens.

`hicra/accuracy`, the training groups' pass@k (the experiment's primary metric by default) and the
rollout browser's correct/incorrect all count completions whose success reward is at least the
threshold. The rule:
- `success_reward: NAME` (`--success-reward`): the reward function logged as `rewards/NAME`, with
  `success_threshold` (default 1.0);
- else hicra's `accuracy` reward when the run has it (the default rewards do);
- else the first reward function listed (a reward model is never one: its logit is not a verdict),
  with the threshold; a run with only a reward model has no success signal and logs no accuracy.

A reward that returns None for a completion (TRL's "no reward") counts it as not correct. The rule
used is written to the run's config.yaml (`success_signal`), said on stderr at the start, and shown
by `hicra report`.
"""

from __future__ import annotations

import math
from typing import Any

from hicra.errors import HicraError


class SuccessSignal:
    """Reads the success reward's last scores as 1.0 (correct) or 0.0, as the trainer's accuracy
    and group pass@k expect; `pop_counts` passes on hicra's accuracy reward's checker counts."""

    def __init__(self, reward: Any, name: str, threshold: float, rule: str) -> None:
        self.reward = reward
        self.name = name
        self.threshold = threshold
        self.rule = rule

    @property
    def last_scores(self) -> list[float]:
        return [1.0 if self.correct_score(s) else 0.0 for s in self.reward.last_scores]

    def correct_score(self, score: float | None) -> bool:
        return score is not None and not math.isnan(score) and score >= self.threshold

    def correct(self, rewards: dict[str, Any]) -> bool | None:
        """A rollout's verdict from its rewards by name (None: the reward gave none)."""
        value = rewards.get(self.name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return bool(value >= self.threshold)

    @property
    def last_inverted(self) -> list[bool] | None:
        """Under `reward_corruption`: which of the last scores were inverted (else None)."""
        return getattr(self.reward, "last_inverted", None)

    @property
    def last_raw_scores(self) -> list[float]:
        return list(self.reward.last_scores)

    def pop_counts(self) -> dict[str, int]:
        pop = getattr(self.reward, "pop_counts", None)
        return pop() if pop is not None else {}

    def describe(self) -> str:
        return f"{self.name} >= {self.threshold:g} ({self.rule})"


def _callable_rewards(trainer: Any) -> list[tuple[int, str, Any]]:
    import torch.nn as nn

    return [
        (i, name, func)
        for i, (name, func) in enumerate(
            zip(trainer.reward_func_names, trainer.reward_funcs, strict=True)
        )
        if not isinstance(func, nn.Module)
    ]


def attach_success_signal(trainer: Any) -> SuccessSignal | None:
    """The trainer's success signal by the rule above. A plain function chosen as the signal is
    wrapped in place (`CheckedReward`) so that its scores are kept."""
    from hicra.train.reward_funcs import CheckedReward
    from hicra.train.rewards import AccuracyReward

    args = trainer.args
    wanted = getattr(args, "success_reward", None)
    threshold = float(getattr(args, "success_threshold", 1.0))
    rewards = _callable_rewards(trainer)
    if wanted:
        found = [r for r in rewards if r[1] == wanted]
        if not found:
            models = [n for n in trainer.reward_func_names if n not in {r[1] for r in rewards}]
            why = (
                f" ({wanted!r} is a reward model: its logit is not a verdict)"
                if wanted in models
                else ""
            )
            raise HicraError(
                f"success_reward {wanted!r} is not one of the run's reward functions "
                f"({', '.join(r[1] for r in rewards) or 'none'}){why}"
            )
        chosen, rule = found[0], "success_reward"
    else:
        accuracy = [r for r in rewards if isinstance(r[2], AccuracyReward)]
        if accuracy:
            chosen, rule = accuracy[0], "hicra's accuracy reward, the default"
        elif rewards:
            chosen, rule = rewards[0], "the first reward function, the default; set success_reward"
        else:
            return None
    index, name, func = chosen
    if not hasattr(func, "last_scores"):
        func = CheckedReward(func, name)
        trainer.reward_funcs[index] = func
    return SuccessSignal(func, name, threshold, rule)


def describe(signal: SuccessSignal | None) -> str:
    """What config.yaml and the report say."""
    if signal is None:
        return "none (only a reward model: no hicra/accuracy, no group pass@k)"
    return signal.describe()
