"""Stream rollouts.jsonl: strategic-gram counts per step, and a bounded sample for the browser.

A long run logs far more completions than a page can hold, and each may be thousands of tokens.
Two passes keep memory bounded: the first counts (grams per step, outcomes), the second reads back
only the sampled lines. The sample spreads over the steps and mixes correct and incorrect answers.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hicra.jsonl import ReadStats, read_jsonl
from hicra.run_folder import RolloutField as F

MAX_DISPLAY_CHARS = 20_000  # a longer completion is cut in the browser (and says so)


@dataclass(frozen=True)
class Segment:
    """A piece of completion text; `grams` is non-empty for a planning span."""

    text: str
    grams: tuple[str, ...] = ()


@dataclass
class Rollout:
    """One sampled completion, ready to display."""

    line: int
    step: int
    group: Any
    prompt: str
    completion: str
    answer: str
    reward: float | None
    correct: bool | None
    advantage: float | None
    length: int | None
    planning_tokens: int | None
    spans: list[tuple[int, int, tuple[str, ...]]]
    images: list[str] = field(default_factory=list)  # vision-language rows: image labels
    thumbnails: list[str] = field(default_factory=list)  # their thumbnails, run-folder relative

    @property
    def outcome(self) -> str:
        return {True: "correct", False: "incorrect", None: "unknown"}[self.correct]

    def segments(self, max_chars: int = MAX_DISPLAY_CHARS) -> list[Segment]:
        """The completion cut into plain and planning pieces (at most `max_chars` characters)."""
        return segments(self.completion[:max_chars], self.spans)


@dataclass
class RolloutScan:
    """What the rollouts file holds: counts over all of it, and the sample to show."""

    path: Path
    total: int = 0
    per_step: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    grams_per_step: dict[int, Counter[str]] = field(default_factory=dict)
    with_spans: int = 0
    samples: list[Rollout] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def gram_counts(self, first: int | None = None, last: int | None = None) -> Counter[str]:
        """Gram occurrences over the steps in [first, last] (either bound may be open)."""
        total: Counter[str] = Counter()
        for step, counts in self.grams_per_step.items():
            if (first is None or step >= first) and (last is None or step <= last):
                total.update(counts)
        return total


def merge_spans(spans: Any, length: int) -> list[tuple[int, int, tuple[str, ...]]]:
    """Overlapping or nested [start, end, gram] spans as disjoint ranges, each with its grams.

    Spans outside [0, length), empty or malformed are dropped, so bad input never breaks a page.
    """
    valid: list[tuple[int, int, str]] = []
    for span in spans if isinstance(spans, list) else []:
        if not isinstance(span, (list, tuple)) or len(span) < 2:
            continue
        start, end = span[0], span[1]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            continue
        start, end = max(start, 0), min(end, length)
        if start < end:
            gram = span[2] if len(span) > 2 and isinstance(span[2], str) else ""
            valid.append((start, end, gram))
    valid.sort()
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, gram in valid:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, []))
        if gram and gram not in merged[-1][2]:
            merged[-1][2].append(gram)
    return [(s, e, tuple(g)) for s, e, g in merged]


def segments(text: str, merged: list[tuple[int, int, tuple[str, ...]]]) -> list[Segment]:
    """Split `text` at the merged spans (spans past the end of `text` are clipped)."""
    out: list[Segment] = []
    pos = 0
    for start, end, grams in merged:
        start, end = min(start, len(text)), min(end, len(text))
        if start >= end:
            continue
        if start > pos:
            out.append(Segment(text[pos:start]))
        out.append(Segment(text[start:end], grams or ("?",)))
        pos = end
    if pos < len(text):
        out.append(Segment(text[pos:]))
    return out


def _gram_of(span: Any, completion: str) -> str | None:
    if not isinstance(span, (list, tuple)) or len(span) < 2:
        return None
    if len(span) > 2 and isinstance(span[2], str) and span[2]:
        return span[2]
    start, end = span[0], span[1]
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(completion):
        return " ".join(completion[start:end].lower().split())
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _step_of(row: dict[str, Any]) -> int | None:
    step = row.get(F.STEP)
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
        return None
    return int(step)


def _outcome(row: dict[str, Any]) -> str:
    correct = row.get(F.CORRECT)
    return "correct" if correct is True else "incorrect" if correct is False else "unknown"


def select_lines(index: dict[int, list[tuple[int, str]]], limit: int) -> set[int]:
    """At most `limit` line numbers spread evenly over the steps, outcomes taken in turn per step."""
    steps = sorted(index)
    if limit <= 0 or not steps:
        return set()
    if len(steps) > limit:
        picks = {round(i * (len(steps) - 1) / max(limit - 1, 1)) for i in range(limit)}
        steps = [steps[i] for i in sorted(picks)]
    chosen: set[int] = set()
    quota, extra = divmod(limit, len(steps))
    for n, step in enumerate(steps):
        by_outcome: dict[str, list[int]] = {}
        for line, outcome in index[step]:
            by_outcome.setdefault(outcome, []).append(line)
        queues = [by_outcome[k] for k in ("correct", "incorrect", "unknown") if k in by_outcome]
        want = quota + (1 if n < extra else 0)
        taken = 0
        for i in range(max(map(len, queues), default=0)):
            for queue in queues:
                if i < len(queue) and taken < want:
                    chosen.add(queue[i])
                    taken += 1
    return chosen


def scan_rollouts(path: Path, max_samples: int) -> RolloutScan:
    """Count grams and outcomes over the whole file, then read back a sample of `max_samples`."""
    scan = RolloutScan(path)
    stats = ReadStats()
    index: dict[int, list[tuple[int, str]]] = {}
    no_step = 0
    last_line = 0
    for number, row in read_jsonl(
        path, on_error="skip", stats=stats, allow_truncated_last_line=True
    ):
        step = _step_of(row)
        if step is None:
            no_step += 1
            continue
        last_line = number
        scan.total += 1
        scan.per_step[step] += 1
        outcome = _outcome(row)
        scan.outcomes[outcome] += 1
        index.setdefault(step, []).append((number, outcome))
        spans = row.get(F.PLANNING_SPANS)
        if isinstance(spans, list):
            scan.with_spans += 1
            completion = row.get(F.COMPLETION) if isinstance(row.get(F.COMPLETION), str) else ""
            counts = scan.grams_per_step.setdefault(step, Counter())
            counts.update(g for g in (_gram_of(s, completion) for s in spans) if g)
    bad = {k: v for k, v in stats.skipped.items() if k != "truncated last line"}
    if bad:
        scan.warnings.append(
            f"{path}: skipped unreadable lines: {ReadStats(skipped=bad).summary()}"
        )
    if no_step:
        scan.warnings.append(f"{path}: {no_step} rollouts without a numeric 'step' skipped")
    if scan.total and not scan.with_spans:
        scan.warnings.append(f"{path}: no rollout has 'planning_spans'; nothing to highlight")
    wanted = select_lines(index, max_samples)
    if wanted:
        scan.samples = list(_read_samples(path, wanted, last_line))
    return scan


def _read_samples(path: Path, wanted: set[int], last_line: int):
    for number, row in read_jsonl(path, on_error="skip", allow_truncated_last_line=True):
        if number > last_line:
            break
        if number not in wanted:
            continue
        completion = row.get(F.COMPLETION)
        completion = completion if isinstance(completion, str) else ""
        length, planning = _number(row.get(F.LENGTH)), _number(row.get(F.PLANNING_TOKENS))
        correct = row.get(F.CORRECT)
        yield Rollout(
            line=number,
            step=_step_of(row) or 0,
            group=row.get(F.GROUP),
            prompt=row.get(F.PROMPT) if isinstance(row.get(F.PROMPT), str) else "",
            completion=completion,
            answer="" if row.get(F.ANSWER) is None else str(row.get(F.ANSWER)),
            reward=_number(row.get(F.REWARD)),
            correct=correct if isinstance(correct, bool) else None,
            advantage=_number(row.get(F.ADVANTAGE)),
            length=None if length is None else int(length),
            planning_tokens=None if planning is None else int(planning),
            spans=merge_spans(row.get(F.PLANNING_SPANS), len(completion)),
            images=_strings(row.get(F.IMAGES)),
            thumbnails=_strings(row.get(F.THUMBNAILS)),
        )


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
