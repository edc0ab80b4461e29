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

import atexit
import contextlib
import json
import re
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "no_answer", "rejected", "timeout", "error"]
MAX_ANSWER_CHARS = 512

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANCHOR = re.compile(r"^\W*(?:final\s+answer|answer)\s*(?:is)?\s*[:：]\s*(.+?)\s*$", re.I | re.M)
_HASHES = re.compile(r"^\s*####\s*(.+?)\s*$", re.M)


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` with balanced braces, or None."""
    found = None
    for match in _BOX.finditer(text):
        depth, start = 1, match.end()
        for pos in range(start, len(text)):
            char = text[pos]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    found = text[start:pos]
                    break
    return found.strip() if found is not None else None


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


def normalize_strict(answer: str) -> str:
    """The paper's strict protocol: compare boxed strings after light LaTeX normalization."""
    text = answer.strip()
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\\text\{\s*([^{}]*?)\s*\}", r"\1", text)
    text = re.sub(r"\^\{?\\circ\}?|°", "", text)
    text = _LATEX_NOISE.sub("", text.replace("\\!", ""))
    text = text.rstrip(".").replace("{,}", "")
    if re.fullmatch(r"-?[\d,]*\.?\d+", text):
        number = float(text.replace(",", ""))
        return str(int(number)) if number == int(number) else repr(number)
    return text


def strict_equal(answer: str | None, gold: str) -> bool:
    """Strict-boxed check: normalized strings (numbers by value) must be equal."""
    return answer is not None and normalize_strict(answer) == normalize_strict(gold)


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
        code = f"from hicra.rewards import worker_main; worker_main({seconds})"
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
        self._workers: list[_Worker] = []
        atexit.register(self.close)

    def _start(self, count: int) -> list[_Worker]:
        fresh = [_Worker(max(1, int(self.timeout))) for _ in range(count)]
        for worker in fresh:
            worker.wait_ready()
        return fresh

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()
        self._workers = []

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
        for (i, answer, _), (status, correct) in zip(pending, self._run(pending), strict=True):
            verdicts[i] = Verdict(correct, status, answer)
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
            streams = [self._workers[s].process.stdout for s in busy]
            ready, _, _ = select.select(streams, [], [], 0.05)
            for slot in list(busy):
                k, deadline = busy[slot]
                worker = self._workers[slot]
                if worker.process.stdout in ready:
                    try:
                        status, value = worker.receive()
                    except EOFError:  # the worker died (e.g. out of memory)
                        status, value = "error", False
                        worker.kill()
                        self._workers[slot] = self._start(1)[0]
                    results[k] = (status, status == "ok" and bool(value))
                    del busy[slot]
                elif time.monotonic() > deadline:
                    worker.kill()
                    self._workers[slot] = self._start(1)[0]
                    results[k] = ("timeout", False)
                    del busy[slot]
        return [r for r in results if r is not None]
