"""The math benchmark registry: where each benchmark lives and which fields hold question and gold.

A benchmark loads from the first of: a local folder given as `--data-dir`, laid out as
`DIR/<folder>/test.jsonl` (or `.jsonl.gz`); the copy bundled with hicra
(`hicra/assets/benchmarks/<folder>/test.jsonl.gz`, all eight benchmarks, so evaluation works
offline); its standard Hugging Face hub dataset. `locate` decides, and results name the source.
Local copies and hub datasets name their fields differently (MATH-500's `problem` and `answer`,
Minerva's boxed `solution` locally but plain `answer` on the hub), so each benchmark lists the
field names it accepts, first match wins, and says how to turn that field into a gold answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hicra.answers import (
    GoldMissing,
    gold_after_hashes,
    gold_boxed,
    gold_list,
    gold_number,
    gold_plain,
)
from hicra.errors import HicraError
from hicra.jsonl import JsonlError, read_jsonl


class BenchmarkError(HicraError):
    """A benchmark cannot be found or read; the message names the benchmark, file and row."""


@dataclass(frozen=True)
class Problem:
    """One benchmark question with its gold answer; `id` is unique within its benchmark."""

    benchmark: str
    id: str
    question: str
    gold: str


GoldParser = Callable[[Any], str]


@dataclass(frozen=True)
class Benchmark:
    """How to find one benchmark and read its rows."""

    name: str
    title: str  # column header, as in the paper's tables
    folder: str  # its folder under --data-dir and in the bundled copies
    hub: tuple[str, str | None, str]  # (dataset id, config, split)
    question_fields: tuple[str, ...]
    gold_fields: tuple[tuple[str, GoldParser], ...]
    default_samples: int = 1
    id_fields: tuple[str, ...] = ("id", "idx", "unique_id", "ID")
    context_field: str | None = None  # prepended to the question when present (OlympiadBench)
    aliases: tuple[str, ...] = field(default=())

    @property
    def hub_label(self) -> str:
        dataset, config, split = self.hub
        return f"{dataset}" + (f" ({config})" if config else "") + f", split {split}"


# Canonical order: the paper's columns first, then the extra benchmarks.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark(
            name="aime24",
            title="AIME24",
            folder="aime24",
            hub=("HuggingFaceH4/aime_2024", None, "train"),
            question_fields=("problem", "question", "Problem"),
            gold_fields=(("answer", gold_plain), ("Answer", gold_plain)),
            default_samples=32,
        ),
        Benchmark(
            name="aime25",
            title="AIME25",
            folder="aime25",
            hub=("yentinglin/aime_2025", None, "train"),
            question_fields=("problem", "question", "Problem"),
            gold_fields=(("answer", gold_plain), ("Answer", gold_plain)),
            default_samples=32,
        ),
        Benchmark(
            name="math500",
            title="MATH500",
            folder="math500",
            hub=("HuggingFaceH4/MATH-500", None, "test"),
            question_fields=("problem", "question"),
            gold_fields=(("answer", gold_plain), ("solution", gold_boxed)),
            aliases=("math-500", "math_500"),
        ),
        Benchmark(
            name="amc23",
            title="AMC23",
            folder="amc23",
            hub=("math-ai/amc23", None, "test"),
            question_fields=("problem", "question"),
            gold_fields=(("answer", gold_number),),
            default_samples=4,
        ),
        Benchmark(
            name="minerva",
            title="Minerva",
            folder="minerva_math",
            hub=("math-ai/minervamath", None, "test"),
            question_fields=("problem", "question"),
            gold_fields=(("answer", gold_plain), ("solution", gold_boxed)),
            aliases=("minerva_math", "minerva-math"),
        ),
        Benchmark(
            name="olympiadbench",
            title="Olympiad",
            folder="olympiadbench",
            hub=("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train"),
            question_fields=("question", "problem"),
            gold_fields=(("final_answer", gold_list), ("answer", gold_list)),
            context_field="context",
            aliases=("olympiad", "olympiad_bench"),
        ),
        Benchmark(
            name="gsm8k",
            title="GSM8K",
            folder="gsm8k",
            hub=("openai/gsm8k", "main", "test"),
            question_fields=("question", "problem"),
            gold_fields=(("answer", gold_after_hashes),),
        ),
        Benchmark(
            name="math",
            title="MATH",
            folder="math",
            hub=("DigitalLearningGmbH/MATH-lighteval", "default", "test"),
            question_fields=("problem", "question"),
            gold_fields=(("answer", gold_plain), ("solution", gold_boxed)),
        ),
    )
}
# The columns of the paper's results table (PAPER.md, section 5), in its order.
PAPER_BENCHMARKS = ("aime24", "aime25", "math500", "amc23", "minerva", "olympiadbench")
_ALIASES = {alias: b.name for b in BENCHMARKS.values() for alias in (b.folder, *b.aliases)}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called `name` (case-insensitive; folder names and aliases accepted)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[key]


def parse_benchmarks(spec: str | Iterable[str]) -> list[Benchmark]:
    """Benchmarks from "math500,aime24" (or a list), in the order given, duplicates dropped."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: dict[str, Benchmark] = {}
    for name in names:
        if name.strip():
            bench = get_benchmark(name)
            chosen.setdefault(bench.name, bench)
    if not chosen:
        raise BenchmarkError("no benchmark given; known: " + ", ".join(BENCHMARKS))
    return list(chosen.values())


# --------------------------------------------------------------------------- rows -> problems
def _first(row: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    for name in names:
        if name in row and row[name] is not None:
            return name, row[name]
    return None


def problem_from_row(bench: Benchmark, row: Mapping[str, Any], where: str, index: int) -> Problem:
    """A Problem from one row; `where` ("FILE, line N" or "hub DATASET, row N") names it in errors."""

    def fail(message: str) -> BenchmarkError:
        present = ", ".join(map(str, row)) or "none"
        return BenchmarkError(f"{bench.name}: {where}: {message} (fields present: {present})")

    found = _first(row, bench.question_fields)
    if found is None or not isinstance(found[1], str) or not found[1].strip():
        raise fail(f"no question field ({' or '.join(bench.question_fields)})")
    question = found[1].strip()
    if bench.context_field:
        context = row.get(bench.context_field)
        if isinstance(context, str) and context.strip() and context.strip() != "None":
            question = f"{context.strip()}\n\n{question}"
    gold, problems = None, []
    for name, parse in bench.gold_fields:
        if row.get(name) is None:
            continue
        try:
            gold = parse(row[name])
            break
        except GoldMissing as err:
            problems.append(f"{name!r}: {err}")
    if gold is None:
        wanted = " or ".join(name for name, _ in bench.gold_fields)
        detail = f"; {'; '.join(problems)}" if problems else ""
        raise fail(f"no answer field ({wanted}){detail}")
    ident = _first(row, bench.id_fields)
    problem_id = str(ident[1]) if ident is not None else str(index)
    return Problem(bench.name, problem_id, question, gold)


def _check_unique(bench: Benchmark, problems: list[Problem], where: list[str]) -> None:
    seen: dict[str, str] = {}
    for problem, place in zip(problems, where, strict=True):
        if problem.id in seen:
            raise BenchmarkError(
                f"{bench.name}: {place}: duplicate problem id {problem.id!r} (first at "
                f"{seen[problem.id]}); ids must be unique so that results can resume"
            )
        seen[problem.id] = place


LOCAL_NAMES = ("test.jsonl", "test.jsonl.gz")  # what a benchmark folder may hold, first wins
BUNDLED_NAME = "test.jsonl.gz"


def local_file(bench: Benchmark, data_dir: str | os.PathLike[str]) -> Path:
    """`DIR/<folder>/test.jsonl` or `test.jsonl.gz`; `DIR/<name>/...` is accepted too."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise BenchmarkError(f"data folder not found: {root}")
    for folder in dict.fromkeys((bench.folder, bench.name)):
        for name in LOCAL_NAMES:
            path = root / folder / name
            if path.is_file():
                return path
    raise BenchmarkError(
        f"{bench.name}: no {bench.folder}/test.jsonl (or test.jsonl.gz) in the data folder "
        f"{root} (expected {root / bench.folder / 'test.jsonl'})"
    )


def bundled_dir() -> Path | None:
    """The folder of the benchmark copies shipped inside the hicra package (None if absent)."""
    root = resources.files("hicra").joinpath("assets/benchmarks")
    return root if isinstance(root, Path) and root.is_dir() else None


def bundled_file(bench: Benchmark) -> Path | None:
    """The bundled copy of a benchmark, or None when hicra ships none."""
    root = bundled_dir()
    if root is None:
        return None
    path = root / bench.folder / BUNDLED_NAME
    return path if path.is_file() else None


def locate(bench: Benchmark, data_dir: str | os.PathLike[str] | None) -> tuple[str, Path | None]:
    """(source label, file) of a benchmark: `--data-dir`, else the bundled copy, else the hub
    (file None). Labels: the local path, `bundled:<folder>/test.jsonl.gz`, `hub:<dataset>`."""
    if data_dir is not None:
        path = local_file(bench, data_dir)
        return str(path), path
    path = bundled_file(bench)
    if path is not None:
        return f"bundled:{bench.folder}/{path.name}", path
    return f"hub:{bench.hub_label}", None


def load_local(bench: Benchmark, path: Path, limit: int | None = None) -> list[Problem]:
    problems: list[Problem] = []
    where: list[str] = []
    try:
        for number, row in read_jsonl(path):
            place = f"{path}, line {number}"
            problems.append(problem_from_row(bench, row, place, len(problems)))
            where.append(place)
            if limit is not None and len(problems) >= limit:
                break
    except JsonlError as err:
        raise BenchmarkError(f"{bench.name}: {err}") from None
    if not problems:
        raise BenchmarkError(f"{bench.name}: {path} holds no problems")
    _check_unique(bench, problems, where)
    return problems


def load_hub(bench: Benchmark, limit: int | None = None) -> list[Problem]:
    """The benchmark from its hub dataset; offline, a clear error that points at --data-dir."""
    dataset_id, config, split = bench.hub
    try:
        import datasets

        data = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as err:  # network, auth, missing config: all end the same way for users
        raise BenchmarkError(
            f"{bench.name}: cannot load {bench.hub_label} from the Hugging Face hub "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}); "
            f"offline, pass --data-dir DIR with {bench.folder}/test.jsonl"
        ) from None
    problems, where = [], []
    for index, row in enumerate(data):
        place = f"hub {dataset_id}, row {index}"
        problems.append(problem_from_row(bench, row, place, index))
        where.append(place)
        if limit is not None and len(problems) >= limit:
            break
    _check_unique(bench, problems, where)
    return problems


def load_benchmark(
    name: str | Benchmark,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> list[Problem]:
    """The first `limit` problems of a benchmark, from where `locate` finds it."""
    bench = name if isinstance(name, Benchmark) else get_benchmark(name)
    if limit is not None and limit < 1:
        raise BenchmarkError(f"--limit must be at least 1, got {limit}")
    _, path = locate(bench, data_dir)
    return load_local(bench, path, limit) if path is not None else load_hub(bench, limit)


def source_of(bench: Benchmark, data_dir: str | os.PathLike[str] | None) -> str:
    """Where a benchmark is read from, for results files (see `locate`)."""
    return locate(bench, data_dir)[0]
