"""Answer extraction and checking with hard time limits, shared by training rewards and evaluation.

Only an explicit final answer counts: the last `\\boxed{...}` (or `\\fbox{...}`), else the last
anchored "answer:" / "final answer:" line, else a GSM8K-style "#### x" line. A bare expression in
the text is never graded (math-verify alone would grade a completion that repeats "12+7" as 19),
and an answer that is still unevaluated arithmetic ("12+7" for gold 19) is rejected.
math-verify runs in worker processes that are killed past a hard deadline: an adversarial answer
such as `\\boxed{9^{9^{9^{9}}}}` scores 0 with status "timeout" and never stalls training.
Model text is never passed to `eval`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import select
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

Status = Literal["ok", "no_answer", "rejected", "timeout", "error"]
MAX_ANSWER_CHARS = 512

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANCHOR = re.compile(r"^\W*(?:final\s+answer|answer)\s*(?:is)?\s*[:：]\s*(.+?)\s*$", re.I | re.M)
_HASHES = re.compile(r"^\s*####\s*(.+?)\s*$", re.M)


_BRACE_TOKENS = re.compile(r"\\(?:boxed|fbox)\s*\{|\{|\}")


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` with balanced braces, or None.

    One pass with a stack (linear time even for thousands of unclosed boxes in degenerate output);
    "last" is the closed box that starts last, so `\\boxed{\\boxed{1}}` gives "1".
    """
    stack: list[int | None] = []  # content start of an open box, None for a plain "{"
    found: tuple[int, int] | None = None
    for match in _BRACE_TOKENS.finditer(text):
        token = match.group()
        if token == "}":
            start = stack.pop() if stack else None
            if start is not None and (found is None or start > found[0]):
                found = (start, match.start())
        else:
            stack.append(match.end() if token != "{" else None)
    return text[found[0] : found[1]].strip() if found else None


def extract_answer(text: str) -> str | None:
    """The completion's explicit final answer (boxed, then anchored line, then ####), or None."""
    boxed = last_boxed(text)
    if boxed:
        return boxed
    for pattern in (_ANCHOR, _HASHES):
        matches = pattern.findall(text)
        if matches:
            answer = matches[-1].strip().rstrip(".").strip()
            inner = last_boxed(answer)
            answer = inner if inner else answer.strip("$ ")
            if answer:
                return answer
    return None


_LATEX_NOISE = re.compile(r"\\[,;:! ]|\\left|\\right|\$|\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|\s+")
_BINARY_OP = re.compile(r"[\d)}]\s*(?:\+|\*|\\times|\\cdot|\^|-|×)\s*[({]?\s*\d")


def is_unevaluated_arithmetic(answer: str, gold: str) -> bool:
    """True for "12+7" against gold "19": arithmetic the gold does not contain is not an answer."""
    cleaned = _LATEX_NOISE.sub("", answer).lstrip("-")
    return bool(_BINARY_OP.search(cleaned)) and not _BINARY_OP.search(
        _LATEX_NOISE.sub("", gold).lstrip("-")
    )


_TEXT_WRAPPER = re.compile(
    r"\\(?:text|textrm|textnormal|mathrm|mathbf|textbf|operatorname)\s*\{\s*([^{}]*?)\s*\}"
)
_DIGIT_GAP = re.compile(r"(?<=\d)[\s~]+(?=\d)")
_NUMBER_WITH_COMMAS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_PLAIN_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")


def strip_thousands(text: str) -> str:
    """Thousands separators out of a plain number ("1,450,000"); "1, 2, 3" is left alone."""
    return text.replace(",", "") if _NUMBER_WITH_COMMAS.fullmatch(text) else text


def normalize_strict(answer: str) -> str:
    """The paper's strict protocol: compare boxed strings after light LaTeX normalization.

    A plain number is compared by its exact value (Fraction: "27.0" is "27", no float rounding).
    """
    text = answer.strip()
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    for _ in range(3):  # \text{...} and its kin keep their content (nested up to three deep)
        text = _TEXT_WRAPPER.sub(r"\1", text)
    text = re.sub(r"\^\{?\\circ\}?|°", "", text)
    text = _DIGIT_GAP.sub("\x00", text.replace("~", " "))  # "1 9" must never read as 19
    text = _LATEX_NOISE.sub("", text.replace("\\!", "")).replace("\x00", " ")
    text = strip_thousands(text.rstrip(".").replace("{,}", ""))
    if _PLAIN_NUMBER.fullmatch(text):
        value = Fraction(text)
        return (
            str(value.numerator)
            if value.denominator == 1
            else f"{value.numerator}/{value.denominator}"
        )
    return text


_WORD = re.compile(r"[A-Za-z]+")


def stated_units(text: str) -> frozenset[str]:
    """Lowercased words inside \\text{}, \\mathrm{} and their kin ("5\\mathrm{~cm}" -> {"cm"}),
    in singular ("inches" -> "inch", "apples" -> "apple"); empty when the answer states no unit."""
    words = (w.lower() for m in _TEXT_WRAPPER.finditer(text) for w in _WORD.findall(m.group(1)))
    return frozenset(_singular(w) for w in words)


def _singular(word: str) -> str:
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def units_conflict(answer: str, gold: str) -> bool:
    """True when answer and gold both state units and they differ: math-verify drops units, so
    "5 km" would otherwise match a gold of "5 cm" (an answer without a unit is not a conflict)."""
    mine, theirs = stated_units(answer), stated_units(gold)
    return bool(mine) and bool(theirs) and mine != theirs


def strict_equal(answer: str | None, gold: str) -> bool:
    """Strict-boxed check: normalized strings (numbers by value) must be equal."""
    return answer is not None and normalize_strict(answer) == normalize_strict(gold)


# --------------------------------------------------------------------------- gold answers
# Where a row's question and gold answer are found, first match wins (training data, local files).
QUESTION_FIELDS = ("question", "problem", "prompt", "query", "input")
ANSWER_FIELDS = ("answer", "final_answer", "solution", "target", "output")


def not_text(name: str, value: Any) -> str | None:
    """What is wrong with a field that should hold text ("field 'question' is a list, expected
    text"; "... is null"; "... is empty"), or None when it is usable text."""
    if isinstance(value, str):
        return None if value.strip() else f"field {name!r} is empty"
    if value is None:
        return f"field {name!r} is null"
    kind = {list: "a list", tuple: "a list", dict: "an object", bool: "true/false"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
    return f"field {name!r} is {kind}, expected text"


class GoldMissing(Exception):
    """A field exists but holds no usable answer (e.g. a solution without \\boxed{})."""


def gold_plain(value: Any) -> str:
    """A plain answer field: strings as they are, floats like AMC's 27.0 as "27"."""
    if isinstance(value, bool) or value is None:
        raise GoldMissing("not an answer")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GoldMissing("not a finite number")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise GoldMissing(f"expected text or a number, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise GoldMissing("empty")
    return text


def gold_after_hashes(value: Any) -> str:
    """GSM8K: the worked solution ends in a line `#### n`."""
    text = gold_plain(value)
    if "####" not in text:
        raise GoldMissing("no '#### answer' line")
    return strip_thousands(gold_plain(text.rsplit("####", 1)[1]))


def gold_boxed(value: Any) -> str:
    """MATH and Minerva: the gold is the last \\boxed{} of the reference solution."""
    answer = last_boxed(gold_plain(value))
    if not answer:
        raise GoldMissing("no \\boxed{} answer")
    return answer


def gold_list(value: Any) -> str:
    """OlympiadBench: `final_answer` is a list of strings (often "$...$"); several are joined."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise GoldMissing("expected a non-empty list of answers")
    parts = [gold_plain(part).replace("$", "").strip() for part in value]
    if not all(parts):
        raise GoldMissing("an empty answer in the list")
    return ", ".join(parts)


def gold_number(value: Any) -> str:
    return strip_thousands(gold_plain(value))


def gold_answer(value: Any) -> str | None:
    """The gold answer in a field of unknown format, or None: GSM8K's `#### n`, a boxed solution
    (MATH), a list of answers (OlympiadBench), a number (27.0 is "27") or plain text."""
    try:
        if isinstance(value, (list, tuple)):
            return gold_list(list(value))
        if isinstance(value, str) and "####" in value:
            return gold_after_hashes(value)
        if isinstance(value, str) and ("\\boxed" in value or "\\fbox" in value):
            return gold_boxed(value)
        return gold_number(value)
    except GoldMissing:
        return None


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one completion against one gold answer."""

    correct: bool
    status: Status
    answer: str | None


# --------------------------------------------------------------------------- worker side
def _verify_in_worker(answer: str, gold: str, seconds: int) -> bool:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    gold_parsed = parse(f"\\boxed{{{gold}}}", configs, parsing_timeout=seconds)
    if not gold_parsed:
        gold_parsed = parse(gold, configs, parsing_timeout=seconds)
    pred_parsed = parse(f"\\boxed{{{answer}}}", configs, parsing_timeout=seconds)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=seconds))


def worker_main(seconds: int) -> None:
    """A verifier process: JSON [answer, gold] lines in, JSON [status, correct] lines out."""
    import math_verify  # noqa: F401  (import before saying ready: deadlines then cover checks only)

    print('"ready"', flush=True)
    for line in sys.stdin:
        answer, gold = json.loads(line)
        try:
            reply = ["ok", _verify_in_worker(answer, gold, seconds)]
        except Exception:  # a malformed answer must not kill the worker
            reply = ["error", False]
        print(json.dumps(reply), flush=True)


class _Worker:
    """One verifier subprocess (a plain subprocess: works from scripts, notebooks and stdin)."""

    def __init__(self, seconds: int) -> None:
        code = f"from hicra.answers import worker_main; worker_main({seconds})"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )

    def send(self, answer: str, gold: str) -> None:
        self.process.stdin.write(json.dumps([answer, gold]) + "\n")
        self.process.stdin.flush()

    def receive(self) -> object:
        line = self.process.stdout.readline()
        if not line:
            raise EOFError("the verifier process exited")
        return json.loads(line)

    def wait_ready(self, seconds: float = 120.0) -> None:
        ready, _, _ = select.select([self.process.stdout], [], [], seconds)
        if not ready or self.receive() != "ready":
            self.kill()
            raise RuntimeError("a math-verify worker process did not start")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()


def _kill_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.kill()
    workers.clear()


class MathVerifier:
    """math-verify in a pool of worker processes, with a hard per-check deadline.

    A check that overruns `timeout` seconds has its worker killed and replaced, and is reported as
    status "timeout". Reuse one instance: workers start once (about 1 s each) and stay up.
    """

    def __init__(self, workers: int = 2, timeout: float = 5.0) -> None:
        if workers < 1:
            raise ValueError("MathVerifier needs at least one worker")
        self.timeout = timeout
        self.workers_wanted = workers
        self._workers: list[_Worker] = []  # one list for life: the finalizer holds it, not self
        # Workers end with the verifier (garbage collected or closed) or at exit at the latest; an
        # atexit hook on self kept every verifier and its processes alive until exit.
        weakref.finalize(self, _kill_all, self._workers)

    def __enter__(self) -> MathVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self, count: int) -> list[_Worker]:
        fresh = [_Worker(max(1, int(self.timeout))) for _ in range(count)]
        for worker in fresh:
            worker.wait_ready()
        return fresh

    def close(self) -> None:
        """Stop the worker processes now; a later check starts new ones."""
        _kill_all(self._workers)

    def check(self, completion: str, gold: str) -> Verdict:
        return self.check_many([completion], [gold])[0]

    def check_many(self, completions: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        """Verdicts for completion i against gold i, checked in parallel across the workers."""
        if len(completions) != len(golds):
            raise ValueError("check_many needs as many gold answers as completions")
        verdicts: list[Verdict | None] = [None] * len(completions)
        pending: list[tuple[int, str, str]] = []
        for i, (completion, gold) in enumerate(zip(completions, golds, strict=True)):
            answer = extract_answer(completion)
            if answer is None:
                verdicts[i] = Verdict(False, "no_answer", None)
            elif len(answer) > MAX_ANSWER_CHARS or is_unevaluated_arithmetic(answer, str(gold)):
                verdicts[i] = Verdict(False, "rejected", answer)
            elif strict_equal(answer, str(gold)):
                verdicts[i] = Verdict(True, "ok", answer)  # no need to start sympy
            else:
                pending.append((i, answer, str(gold)))
        for (i, answer, gold), (status, correct) in zip(pending, self._run(pending), strict=True):
            verdicts[i] = Verdict(correct and not units_conflict(answer, gold), status, answer)
        return [v for v in verdicts if v is not None]

    def _run(self, tasks: list[tuple[int, str, str]]) -> list[tuple[Status, bool]]:
        if not tasks:
            return []
        missing = min(self.workers_wanted, len(tasks)) - len(self._workers)
        if missing > 0:
            self._workers += self._start(missing)
        results: list[tuple[Status, bool] | None] = [None] * len(tasks)
        queue = list(range(len(tasks)))
        busy: dict[int, tuple[int, float]] = {}  # worker slot -> (task index, deadline)
        while queue or busy:
            for slot, worker in enumerate(self._workers):
                if slot not in busy and queue:
                    k = queue.pop(0)
                    worker.send(*tasks[k][1:])
                    busy[slot] = (k, time.monotonic() + self.timeout)
            self._collect(busy, results, wait=0.05)
            now = time.monotonic()
            expired = [slot for slot, (_, deadline) in busy.items() if now > deadline]
            if expired:
                self._collect(busy, results, wait=0.0, slots=expired)  # answered just in time?
                dead = [slot for slot in expired if slot in busy]
                for slot in dead:
                    results[busy.pop(slot)[0]] = ("timeout", False)
                self._restart(dead, busy)
        return [r for r in results if r is not None]

    def _collect(
        self,
        busy: dict[int, tuple[int, float]],
        results: list,
        wait: float,
        slots: list[int] | None = None,
    ) -> None:
        """Read every answer that is ready (waiting up to `wait` s for the first)."""
        slots = list(busy) if slots is None else slots
        streams = {self._workers[s].process.stdout: s for s in slots}
        ready, _, _ = select.select(list(streams), [], [], wait) if streams else ([], [], [])
        crashed = []
        for stream in ready:
            slot = streams[stream]
            try:
                status, value = self._workers[slot].receive()
            except EOFError:  # the worker died (e.g. out of memory)
                status, value = "error", False
                crashed.append(slot)
            results[busy.pop(slot)[0]] = (status, status == "ok" and bool(value))
        self._restart(crashed, busy)

    def _restart(self, slots: list[int], busy: dict[int, tuple[int, float]]) -> None:
        """Replace killed workers; the others' deadlines do not run while we wait for that."""
        if not slots:
            return
        started = time.monotonic()
        for slot in slots:
            self._workers[slot].kill()
            self._workers[slot] = self._start(1)[0]
        paused = time.monotonic() - started
        for slot, (k, deadline) in busy.items():
            busy[slot] = (k, deadline + paused)


def verify_extracted(
    verifier: MathVerifier, answers: Sequence[str], golds: Sequence[str]
) -> list[Verdict]:
    """math-verify alone on answers already extracted: no string shortcut, no arithmetic rule.

    For auditing gold answers (does math-verify parse this gold and find it equal to itself?);
    graders use `MathVerifier.check_many`, which extracts the answer from a completion first.
    """
    if len(answers) != len(golds):
        raise ValueError("verify_extracted needs as many gold answers as answers")
    tasks = [(i, str(a), str(g)) for i, (a, g) in enumerate(zip(answers, golds, strict=True))]
    return [
        Verdict(correct, status, answer)
        for (_, answer, _), (status, correct) in zip(tasks, verifier._run(tasks), strict=True)
    ]
