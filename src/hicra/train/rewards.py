"""Reward functions in TRL's calling convention, for math answers and reasoning-gym tasks.

`AccuracyReward` gives 1.0 for a correct final answer and 0.0 otherwise, as the paper's rule-based
reward (reasoning-gym scorers' partial credit, e.g. 0.5 for a wrong sign, only with
`partial_credit=True`); `FormatReward` gives 1.0 when the completion states its final answer in `\\boxed{}`. Both
read only the explicit final answer (see `hicra.answers.extract_answer`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from typing import Any

from hicra.answers import MathVerifier, extract_answer, last_boxed


def completion_text(completion: Any) -> str:
    """TRL passes plain strings, or chat messages for conversational prompts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content blocks
            return "".join(b.get("text") or "" for b in content if isinstance(b, dict))
        return str(content)
    return str(completion)


class AccuracyReward:
    """1.0 when the final answer is right: math-verify for math rows, the task's scorer for rg rows.

    Keeps the scores of its last call (`last_scores`, in completion order; "correct" means a score
    of at least 1, whether or not partial credit is on) and counts the checks
    that hit the hard time limit and the reasoning-gym scorer errors (`pop_counts`), so that the
    trainer can log accuracy and both counts.
    """

    __name__ = "accuracy"

    def __init__(self, verifier: MathVerifier | None = None, partial_credit: bool = False) -> None:
        self._verifier = verifier
        self.partial_credit = partial_credit
        self._scorers: dict[str, Any] = {}
        self.last_scores: list[float] = []
        self._counts = {"verify_timeouts": 0, "scorer_errors": 0}

    @property
    def verifier(self) -> MathVerifier:
        if self._verifier is None:
            self._verifier = MathVerifier()
        return self._verifier

    def pop_counts(self) -> dict[str, int]:
        counts = dict(self._counts)
        self._counts = dict.fromkeys(counts, 0)
        return counts

    def _rg_score(self, task: str, entry_json: str, answer: str | None) -> float:
        import reasoning_gym

        name = task[3:]
        if name not in self._scorers:
            self._scorers[name] = reasoning_gym.create_dataset(name, size=1, seed=0)
        try:
            score = float(self._scorers[name].score_answer(answer, json.loads(entry_json)))
        except Exception:  # odd model output must never crash training: scored 0, and counted
            self._counts["scorer_errors"] += 1
            return 0.0
        if self.partial_credit:
            return score
        return 1.0 if score >= 1.0 else 0.0

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        answer: list[str],
        task: list[str] | None = None,
        rg_entry: list[str] | None = None,
        **_: Any,
    ) -> list[float]:
        texts = [completion_text(c) for c in completions]
        tasks = task or ["math"] * len(texts)
        entries = rg_entry or [""] * len(texts)
        scores = [0.0] * len(texts)
        math_rows = []
        for i, name in enumerate(tasks):
            if name.startswith("rg:"):
                scores[i] = self._rg_score(name, entries[i], extract_answer(texts[i]))
            else:
                math_rows.append(i)
        if math_rows:
            verdicts = self.verifier.check_many(
                [texts[i] for i in math_rows], [answer[i] for i in math_rows]
            )
            for i, verdict in zip(math_rows, verdicts, strict=True):
                scores[i] = 1.0 if verdict.correct else 0.0
                self._counts["verify_timeouts"] += verdict.status == "timeout"
        self.last_scores = scores
        return scores


class FormatReward:
    """1.0 when the completion puts a final answer in `\\boxed{}`, else 0.0."""

    __name__ = "format"

    def __call__(self, prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        return [1.0 if last_boxed(completion_text(c)) else 0.0 for c in completions]


class CorruptedAccuracy(AccuracyReward):
    """The accuracy reward inverted (1 - r) on a share `fraction` of the prompt groups: a positive
    control whose harm is graded by the fraction (an inverted group pushes away from its right
    answers, so the net learning signal is about 1 - 2 * fraction of GRPO's).

    Groups are numbered over the run (step x groups per step + the group's place in the global
    batch, the same on every process) and group k is inverted when floor((k + 1) f + u) exceeds
    floor(k f + u), with u drawn from the seed: every run inverts floor or ceil of f x its groups,
    evenly spread, reproducibly. `last_scores` keep the real scores (hicra/accuracy).
    """

    def __init__(
        self,
        verifier: Any = None,
        partial_credit: bool = False,
        *,
        fraction: float,
        seed: int,
        group_size: int,
    ) -> None:
        super().__init__(verifier, partial_credit)
        self.fraction, self.group_size = float(fraction), int(group_size)
        self.phase = random.Random(f"reward_corruption/{seed}").random()
        self.inverted_groups = 0
        self.last_inverted: list[bool] = []  # per completion of the last call: inverted or not

    def inverted(self, group: int) -> bool:
        """Whether run-wide group number `group` gets the inverted reward."""
        f, u = self.fraction, self.phase
        return math.floor((group + 1) * f + u) > math.floor(group * f + u)

    def __call__(self, prompts: list[Any], completions: list[Any], answer: list[str], **kw: Any):
        scores = super().__call__(prompts, completions, answer, **kw)
        state = kw.get("trainer_state")
        self.last_inverted = [False] * len(scores)
        if not self.fraction or state is None:
            return scores
        from accelerate import PartialState

        process = PartialState()
        local = len(scores)
        first = process.process_index * local  # this process's slice of the global batch
        groups_per_step = local * process.num_processes // self.group_size
        out = list(scores)
        for i in range(local):
            group = state.global_step * groups_per_step + (first + i) // self.group_size
            if self.inverted(group):
                out[i] = 1.0 - out[i]
                self.last_inverted[i] = True
                self.inverted_groups += (first + i) % self.group_size == 0
        return out
