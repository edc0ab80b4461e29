"""Turning evaluated samples into scores, the paper-style markdown table, and run comparisons.

Scores are fractions in results.json and percentages (one decimal, as in the paper) in markdown.
A benchmark's score uses the first `samples` sample indices of each problem, so a results file
never mixes sample counts even when samples.jsonl holds more (an earlier run with --samples 64).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hicra.errors import HicraError
from hicra.eval.passk import avg_at_k, k_values, mean_majority, mean_pass_at_k
from hicra.eval.registry import BENCHMARKS, Benchmark, Problem

RESULTS_FILE = "results.json"
MARKDOWN_FILE = "results.md"


class ResultsError(HicraError):
    """A results file cannot be read or compared."""


def summarize_benchmark(
    bench: Benchmark,
    problems: Sequence[Problem],
    rows: Mapping[tuple[str, int], Mapping[str, Any]],
    samples: int,
    source: str,
) -> dict[str, Any]:
    """Scores of one benchmark from its sample rows, keyed by (problem id, sample index)."""
    correct: list[list[bool]] = []
    answers: list[list[str | None]] = []
    tokens = truncated = no_answer = timeouts = 0
    for problem in problems:
        picked = [rows[(problem.id, s)] for s in range(samples)]
        correct.append([bool(r["correct"]) for r in picked])
        answers.append([r.get("answer") for r in picked])
        tokens += sum(int(r.get("tokens", 0)) for r in picked)
        truncated += sum(r.get("finish_reason") == "length" for r in picked)
        no_answer += sum(r.get("answer") is None for r in picked)
        timeouts += sum(r.get("status") == "timeout" for r in picked)
    total = len(problems) * samples
    return {
        "title": bench.title,
        "source": source,
        "problems": len(problems),
        "samples": samples,
        "avg@k": avg_at_k(correct),
        "pass@k": {str(k): mean_pass_at_k(correct, k) for k in k_values(samples)},
        "maj@k": mean_majority(answers, correct),
        "no_answer": no_answer / total,
        "truncated": truncated / total,
        "timeouts": timeouts,
        "mean_tokens": tokens / total,
    }


def average(benchmarks: Mapping[str, Mapping[str, Any]]) -> float | None:
    """The unweighted mean of avg@k over benchmarks (the paper's "Avg" column)."""
    values = [b["avg@k"] for b in benchmarks.values()]
    return sum(values) / len(values) if values else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _ordered(names: Sequence[str]) -> list[str]:
    """Benchmarks in the paper's column order; unknown names keep their order at the end."""
    canonical = [n for n in BENCHMARKS if n in names]
    return canonical + [n for n in names if n not in BENCHMARKS]


def model_label(results: Mapping[str, Any]) -> str:
    return str(results.get("label") or results.get("model") or "model")


def markdown_table(results: Mapping[str, Any]) -> str:
    """The paper-style table (benchmarks as columns, pass@1 in %), then per-benchmark details."""
    benches = results["benchmarks"]
    names = _ordered(list(benches))
    header = ["model", *(benches[n]["title"] for n in names), "Avg"]
    values = [model_label(results), *(_pct(benches[n]["avg@k"]) for n in names)]
    values.append(_pct(average(benches)))
    gen = results["generation"]
    samples = ", ".join(f"{benches[n]['title']} {benches[n]['samples']}" for n in names)
    if gen["temperature"] > 0:
        sampling = f"temperature {gen['temperature']}, top-p {gen['top_p']}"
    else:
        sampling = "greedy decoding"
    lines = [
        f"# hicra eval: {model_label(results)}",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
        "| " + " | ".join(values) + " |",
        "",
        f"Pass@1 (%) as avg@k, the mean over k samples per problem (k: {samples}). "
        f"Checker: {results['checker']}; {sampling}, at most {gen['max_new_tokens']} new "
        f"tokens; backend {results['backend']}.",
        "",
        "| benchmark | problems | k | avg@k | pass@k | maj@k | no answer | truncated | mean tokens |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        b = benches[n]
        k = b["samples"]
        lines.append(
            f"| {b['title']} | {b['problems']} | {k} | {_pct(b['avg@k'])} "
            f"| {_pct(b['pass@k'][str(k)])} | {_pct(b['maj@k'])} | {_pct(b['no_answer'])} "
            f"| {_pct(b['truncated'])} | {b['mean_tokens']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_results(output_dir: Path, results: Mapping[str, Any]) -> None:
    """results.json and results.md, each replaced atomically (never a half-written file)."""
    for name, text in (
        (RESULTS_FILE, json.dumps(results, indent=2, ensure_ascii=False) + "\n"),
        (MARKDOWN_FILE, markdown_table(results)),
    ):
        staging = output_dir / f".{name}.tmp"
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, output_dir / name)


# --------------------------------------------------------------------------- compare
def load_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A results.json, given as the file or as the evaluation's output folder."""
    path = Path(path).expanduser()
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        where = f"no {RESULTS_FILE} in {path}" if path.is_dir() else f"file not found: {path}"
        raise ResultsError(f"{where} (give an evaluation output folder or its {RESULTS_FILE})")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{file}: not a valid results file ({err})") from None
    if not isinstance(results, dict) or not isinstance(results.get("benchmarks"), dict):
        raise ResultsError(f"{file}: not a hicra eval results file (no 'benchmarks')")
    for name, bench in results["benchmarks"].items():
        if not isinstance(bench, dict) or not isinstance(bench.get("avg@k"), (int, float)):
            raise ResultsError(f"{file}: benchmark {name!r} has no avg@k score")
    results.setdefault("label", model_label(results))
    return results


_SETTINGS = ("checker", "temperature", "top_p", "max_new_tokens")


def _settings(results: Mapping[str, Any]) -> dict[str, Any]:
    gen = results.get("generation", {})
    return {key: results.get(key, gen.get(key)) for key in _SETTINGS}


def compare_table(
    a: Mapping[str, Any], b: Mapping[str, Any], label_a: str = "A", label_b: str = "B"
) -> str:
    """Two results side by side: pass@1 (%) per benchmark, and B - A in points."""
    ba, bb = a["benchmarks"], b["benchmarks"]
    names = _ordered(list(dict.fromkeys([*ba, *bb])))
    lines = [
        f"A: {label_a} ({model_label(a)})",
        f"B: {label_b} ({model_label(b)})",
        "",
        "| benchmark | A | B | B - A |",
        "|---|---:|---:|---:|",
    ]

    def title(name: str) -> str:
        return (ba.get(name) or bb.get(name))["title"]

    for n in names:
        va = ba[n]["avg@k"] if n in ba else None
        vb = bb[n]["avg@k"] if n in bb else None
        delta = f"{100 * (vb - va):+.1f}" if va is not None and vb is not None else "–"
        lines.append(f"| {title(n)} | {_pct(va)} | {_pct(vb)} | {delta} |")
    common = [n for n in names if n in ba and n in bb]
    if common:
        avg_a = sum(ba[n]["avg@k"] for n in common) / len(common)
        avg_b = sum(bb[n]["avg@k"] for n in common) / len(common)
        lines.append(
            f"| Avg ({len(common)} in both) | {_pct(avg_a)} | {_pct(avg_b)} "
            f"| {100 * (avg_b - avg_a):+.1f} |"
        )
    notes = []
    sa, sb = _settings(a), _settings(b)
    for key in _SETTINGS:
        if sa[key] != sb[key]:
            notes.append(f"{key} differs: A {sa[key]}, B {sb[key]}")
    for n in common:
        for key in ("problems", "samples"):
            if ba[n].get(key) != bb[n].get(key):
                notes.append(f"{title(n)}: {key} differ: A {ba[n].get(key)}, B {bb[n].get(key)}")
        hash_a, hash_b = ba[n].get("content_hash"), bb[n].get("content_hash")
        if hash_a and hash_b and hash_a != hash_b:  # same name, other questions or gold answers
            notes.append(f"{title(n)}: different problems (content hash A {hash_a}, B {hash_b})")
    if notes:
        lines += ["", "Not like for like:", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"
