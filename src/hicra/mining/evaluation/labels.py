"""Judging a gram set before training with it: sentence labels and a reference set.

Annotations come in two forms:
- a JSONL file of rows with a `units` list of `{"text": ..., "labels": [...]}`, one unit a
  sentence or chunk of a reasoning trace (the thought-anchors function tags, made by a language
  model: plan_generation, uncertainty_management, self_checking, problem_setup,
  active_computation, fact_retrieval, result_consolidation, final_answer_emission);
- a folder of JSON files, one trace each, `{"data": [{"text": ..., "gt-class-2": ...}]}`: the
  sentences of DeepSeek-R1 that people labelled with Schoenfeld's episodes (Li et al. 2025,
  `responses_labeled/` of github.com/MingLiiii/Schoenfeld_Reasoning): Read, Analyze, Plan,
  Implement, Explore, Verify, Monitor.
Each form has its default planning and execution labels (`names.py`). A unit is
*planning-like* when it has a planning label and no execution label, *execution-like* in the
reverse case; other units are not used.

A unit is a *hit* when it contains a gram as training will find it (`tagging.GramMatcher`:
case-insensitive, whole words, whitespace runs as one space). The *gap* is the planning-like hit
rate minus the execution-like one: Youden's J of "contains a gram" as a detector of planning.
Agreement with a reference set (the paper's preset by default) is `compare.compare_to_reference`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.jsonl import read_jsonl
from hicra.mining.evaluation.reference import Comparison, compare_to_reference
from hicra.mining.names import (
    EPISODE_EXECUTION_LABELS,
    EPISODE_LABEL_FIELD,
    EPISODE_PLANNING_LABELS,
    EXECUTION_LABELS,
    PLANNING_LABELS,
)
from hicra.tagging import GramMatcher, lowercase_bytes


class AnnotationError(HicraError):
    """An annotations file cannot be used; the message names the file, line and unit."""


@dataclass
class Annotations:
    """The planning-like and execution-like units of an annotations file."""

    path: str
    planning_labels: tuple[str, ...]
    execution_labels: tuple[str, ...]
    traces: int = 0
    planning: list[str] = field(default_factory=list)
    execution: list[str] = field(default_factory=list)
    mixed: int = 0  # units with a label of each kind
    other: int = 0  # units with neither kind of label
    labels: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        units = len(self.planning) + len(self.execution) + self.mixed + self.other
        parts = [
            f"{self.path}: {self.traces:,} traces, {units:,} units: "
            f"{len(self.planning):,} planning-like ({', '.join(self.planning_labels)}), "
            f"{len(self.execution):,} execution-like ({', '.join(self.execution_labels)})"
        ]
        if self.mixed or self.other:
            parts.append(f"not used: {self.mixed:,} with both kinds, {self.other:,} with neither")
        return "; ".join(parts)


def _labels_of(unit: object, where: str) -> tuple[str, list[str]]:
    if not isinstance(unit, dict):
        raise AnnotationError(f"{where}: a unit must be an object with 'text' and 'labels'")
    text, labels = unit.get("text"), unit.get("labels")
    if not isinstance(text, str):
        raise AnnotationError(f"{where}: field 'text' must be a string")
    if isinstance(labels, str):
        labels = [labels]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise AnnotationError(f"{where}: field 'labels' must be a list of strings")
    return text, labels


def _natural(path: Path) -> tuple[Any, ...]:
    """1.json, 2.json, ..., 10.json in number order."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name))


def _episode_traces(folder: Path) -> Iterator[tuple[str, list[Any]]]:
    """(where, units) per JSON file of an episode folder, units as `{"text", "labels"}`."""
    files = sorted(folder.glob("*.json"), key=_natural)
    if not files:
        raise AnnotationError(
            f"{folder}: a folder of annotations must hold JSON files, one labelled trace each "
            f'({{"data": [{{"text": ..., "{EPISODE_LABEL_FIELD}": ...}}]}}); none found'
        )
    for file in files:
        if file.is_dir():
            raise AnnotationError(
                f"{file}: a folder, not a JSON file of one trace; move it out of {folder}"
            )
        if file.is_symlink() and not file.exists():
            raise AnnotationError(f"{file}: a symbolic link that leads nowhere; remove or fix it")
        try:
            item = json.loads(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AnnotationError(f"{file}: not valid JSON ({error})") from None
        except OSError as error:
            raise AnnotationError(f"{file}: cannot read: {error.strerror or error}") from None
        data = item.get("data") if isinstance(item, dict) else None
        if not isinstance(data, list):
            raise AnnotationError(f"{file}: no 'data' list of labelled sentences")
        units = []
        for k, unit in enumerate(data):
            if not isinstance(unit, dict) or EPISODE_LABEL_FIELD not in unit:
                raise AnnotationError(f"{file}, unit {k}: no field '{EPISODE_LABEL_FIELD}'")
            label = unit[EPISODE_LABEL_FIELD]
            if not (
                label is None
                or isinstance(label, str)
                or (isinstance(label, list) and all(isinstance(x, str) for x in label))
            ):
                raise AnnotationError(
                    f"{file}, unit {k}: field '{EPISODE_LABEL_FIELD}' must be a label (text) or a "
                    f"list of labels, got {type(label).__name__} {label!r}"
                )
            units.append({"text": unit.get("text"), "labels": [] if label is None else label})
        yield str(file), units


def _jsonl_traces(path: Path) -> Iterator[tuple[str, list[Any]]]:
    for number, row in read_jsonl(path):
        units = row.get("units")
        if not isinstance(units, list):
            raise AnnotationError(f"{path}, line {number}: no 'units' list of labeled sentences")
        yield f"{path}, line {number}", units


def default_labels(path: str | Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The planning and execution labels of the form at `path` (module doc)."""
    if Path(path).is_dir():
        return EPISODE_PLANNING_LABELS, EPISODE_EXECUTION_LABELS
    return PLANNING_LABELS, EXECUTION_LABELS


def read_annotations(
    path: str | Path,
    planning_labels: Sequence[str] | None = None,
    execution_labels: Sequence[str] | None = None,
) -> Annotations:
    """The planning-like and execution-like units of `path` (module doc); clear errors otherwise.

    Labels None: the defaults of the form (`default_labels`)."""
    default_planning, default_execution = default_labels(path)
    planning = tuple(default_planning if planning_labels is None else planning_labels)
    execution = tuple(default_execution if execution_labels is None else execution_labels)
    both = sorted(set(planning) & set(execution))
    if not planning or not execution:
        raise AnnotationError("--planning-labels and --execution-labels must each name a label")
    if both:
        raise AnnotationError(f"labels both planning and execution: {', '.join(both)}")
    result = Annotations(str(path), planning, execution)
    plan_set, exec_set = set(planning), set(execution)
    traces = _episode_traces(Path(path)) if Path(path).is_dir() else _jsonl_traces(Path(path))
    for where, units in traces:
        result.traces += 1
        for k, unit in enumerate(units):
            text, labels = _labels_of(unit, f"{where}, unit {k}")
            result.labels.update(labels)
            is_plan, is_exec = (
                bool(plan_set.intersection(labels)),
                bool(exec_set.intersection(labels)),
            )
            if is_plan and is_exec:
                result.mixed += 1
            elif is_plan:
                result.planning.append(text)
            elif is_exec:
                result.execution.append(text)
            else:
                result.other += 1
    if not result.traces:
        raise AnnotationError(f"{path}: no annotated traces")
    found = ", ".join(f"{label} ({n:,})" for label, n in result.labels.most_common()) or "none"
    for kind, units, names in (
        ("planning", result.planning, planning),
        ("execution", result.execution, execution),
    ):
        if not units:
            raise AnnotationError(
                f"{path}: no unit has a {kind} label ({', '.join(names)}) without one of the other "
                f"kind; labels found: {found}. Choose them with --{kind}-labels"
            )
    return result


@dataclass(frozen=True)
class HitRates:
    planning_hits: int
    planning_units: int
    execution_hits: int
    execution_units: int

    @property
    def planning_rate(self) -> float:
        return self.planning_hits / self.planning_units

    @property
    def execution_rate(self) -> float:
        return self.execution_hits / self.execution_units

    @property
    def gap(self) -> float:
        """Planning-like minus execution-like hit rate (Youden's J)."""
        return self.planning_rate - self.execution_rate


def _hits(matcher: GramMatcher, texts: Sequence[str]) -> int:
    return sum(bool(matcher.find(lowercase_bytes(t.encode("utf-8")))) for t in texts)


def hit_rates(grams: StrategicGrams, annotations: Annotations) -> HitRates:
    """How many planning-like and execution-like units contain a gram of `grams`."""
    matcher = GramMatcher(grams)
    return HitRates(
        _hits(matcher, annotations.planning),
        len(annotations.planning),
        _hits(matcher, annotations.execution),
        len(annotations.execution),
    )


@dataclass(frozen=True)
class Evaluation:
    label: str
    grams: int
    rates: HitRates
    comparison: Comparison


def evaluate_sets(
    sets: Sequence[tuple[str, StrategicGrams]],
    annotations: Annotations,
    reference: StrategicGrams,
) -> list[Evaluation]:
    """Hit rates and agreement with `reference` of each (label, set)."""
    return [
        Evaluation(
            label, len(grams), hit_rates(grams, annotations), compare_to_reference(grams, reference)
        )
        for label, grams in sets
    ]


def format_evaluations(
    evaluations: Sequence[Evaluation], annotations: Annotations, reference: str
) -> str:
    """The console table: one row per set."""
    width = max([len(e.label) for e in evaluations] + [3])
    lines = [
        f"annotations {annotations.summary()}",
        "hit: the unit contains a gram (as training tags it); gap = planning - execution hit "
        "rate (Youden's J)",
        "",
        f"{'set':<{width}}  grams  planning  execution    gap  | vs {reference}: exact P     R"
        "  overlap P     R",
    ]
    for e in evaluations:
        r, c = e.rates, e.comparison
        lines.append(
            f"{e.label:<{width}}  {e.grams:>5}  {r.planning_rate:>8.3f}  {r.execution_rate:>9.3f}"
            f"  {r.gap:>5.3f}  | {'':>{len(reference) + 4}}{c.exact_precision:>7.2f} "
            f"{c.exact_recall:>5.2f}  {c.overlap_precision:>9.2f} {c.overlap_recall:>5.2f}"
        )
    return "\n".join(lines)
