"""The two answer checkers of `hicra eval`, behind one interface.

- `strict-boxed`: the paper's protocol. Only the last `\\boxed{}` counts; it must equal the gold
  after light LaTeX normalization (numbers compared by value). No sympy, no worker processes.
- `math-verify` (default): the training reward's checker. An explicit final answer (boxed, else an
  anchored "answer:" line, else "#### x") is compared symbolically by math-verify in worker
  processes with a hard per-check deadline (`hicra.answers.MathVerifier`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hicra.answers import MAX_ANSWER_CHARS, MathVerifier, Verdict, last_boxed, strict_equal
from hicra.errors import HicraError

CHECKERS = ("math-verify", "strict-boxed")


class Checker(Protocol):
    name: str

    def check_many(self, completions: Sequence[str], golds: Sequence[str]) -> list[Verdict]: ...

    def close(self) -> None: ...


class StrictBoxedChecker:
    """Last `\\boxed{}` only, compared as normalized strings: the paper's strict protocol."""

    name = "strict-boxed"

    def check_many(self, completions: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        if len(completions) != len(golds):
            raise ValueError("check_many needs as many gold answers as completions")
        verdicts = []
        for completion, gold in zip(completions, golds, strict=True):
            answer = last_boxed(completion)
            if not answer:
                verdicts.append(Verdict(False, "no_answer", None))
            elif len(answer) > MAX_ANSWER_CHARS:
                verdicts.append(Verdict(False, "rejected", answer))
            else:
                verdicts.append(Verdict(strict_equal(answer, str(gold)), "ok", answer))
        return verdicts

    def close(self) -> None:
        pass


class MathVerifyChecker:
    """`MathVerifier` under the checker interface (workers start on the first symbolic check)."""

    name = "math-verify"

    def __init__(self, workers: int = 2, timeout: float = 5.0) -> None:
        self.verifier = MathVerifier(workers=workers, timeout=timeout)

    def check_many(self, completions: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        return self.verifier.check_many(completions, golds)

    def close(self) -> None:
        self.verifier.close()


def make_checker(name: str, workers: int = 2, timeout: float = 5.0) -> Checker:
    """A checker by name: "math-verify" or "strict-boxed"."""
    if name == "strict-boxed":
        return StrictBoxedChecker()
    if name == "math-verify":
        return MathVerifyChecker(workers=workers, timeout=timeout)
    raise HicraError(f"unknown checker {name!r}; choose from {', '.join(CHECKERS)}")
