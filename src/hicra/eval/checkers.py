"""The answer checkers of `hicra eval`, behind one interface.

- `strict-boxed`: the paper's protocol. Only the last `\\boxed{}` counts; it must equal the gold
  after light LaTeX normalization (numbers compared by value). No sympy, no worker processes.
- a user's function (`--checker my_module.check`, `path/to/file.py:check`): `check(completion,
  row) -> bool`, with the benchmark file's row (`UserChecker`).
- `math-verify` (default): the training reward's checker. An explicit final answer (boxed, else an
  anchored "answer:" line, else "#### x") is compared symbolically by math-verify in worker
  processes with a hard per-check deadline (`hicra.answers.MathVerifier`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from hicra.answers import MAX_ANSWER_CHARS, MathVerifier, Verdict, last_boxed, strict_equal
from hicra.errors import HicraError
from hicra.user_code import spec_form

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


class UserChecker:
    """The user's verifier (`--checker my_module.check` or `path/file.py:check`): called as
    `check(completion, row)` with the completion's text and the benchmark file's row (a dict of
    all its fields), it returns True or False. The same function can judge training (a reward
    function that calls it) and evaluation. It runs in this process, without a time limit."""

    def __init__(self, spec: str) -> None:
        from hicra.user_code import UserCodeError, function_name, load_function

        try:
            self.func = load_function(spec, "checker", {})
        except UserCodeError as err:
            raise HicraError(str(err)) from None
        self.spec = spec
        self.name = f"{function_name(self.func)} ({spec})"

    def check_rows(
        self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]], places: Sequence[str]
    ) -> list[Verdict]:
        """One verdict a completion; a checker that raises or answers anything but True/False
        is one line naming it, the row and what is wrong."""
        verdicts = []
        for completion, row, place in zip(completions, rows, places, strict=True):
            try:
                value = self.func(completion, dict(row))
            except Exception as err:
                detail = str(err).splitlines()[0][:160] if str(err) else ""
                raise HicraError(
                    f"checker {self.spec!r} raised {type(err).__name__}: {detail} on {place}"
                ) from None
            if hasattr(value, "item") and not isinstance(value, (bool, int, float)):
                value = value.item()  # numpy or torch booleans
            if value not in (True, False) or isinstance(value, str):
                raise HicraError(
                    f"checker {self.spec!r} returned {value!r} ({type(value).__name__}) on "
                    f"{place}: a checker returns True (correct) or False"
                )
            verdicts.append(Verdict(bool(value), "ok", None))
        return verdicts

    def dry_call(self, row: Mapping[str, Any], place: str) -> None:
        """An empty completion on the first row, before any model loads."""
        self.check_rows([""], [row], [f"{place} (a dry call with an empty completion)"])

    def check_many(self, completions: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        """Without rows: each gold answer as the row's `answer`."""
        rows = [{"answer": gold} for gold in golds]
        return self.check_rows(completions, rows, [f"gold {g!r}" for g in golds])

    def close(self) -> None:
        pass


def make_checker(name: str, workers: int = 2, timeout: float = 5.0) -> Checker:
    """A checker by name ("math-verify", "strict-boxed"), or the user's: a dotted import path or
    path/to/file.py:function (`UserChecker`)."""
    if name == "strict-boxed":
        return StrictBoxedChecker()
    if name == "math-verify":
        return MathVerifyChecker(workers=workers, timeout=timeout)
    if spec_form(name) != "name":
        return UserChecker(name)
    raise HicraError(
        f"unknown checker {name!r}; choose from {', '.join(CHECKERS)}, or name your own: "
        "my_module.my_check or path/to/file.py:my_check"
    )
