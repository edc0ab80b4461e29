"""The math benchmark registry: where each benchmark lives and which fields hold question and gold.

A benchmark loads from the first of: a local folder given as `--data-dir`, laid out as
`DIR/<folder>/test.jsonl` (or `.jsonl.gz`, or `test.parquet`); the copy bundled with hicra
(`hicra/assets/benchmarks/<folder>/test.jsonl.gz`, the eight text benchmarks, so evaluation works
offline); its standard Hugging Face hub dataset. `locate` decides, and results name the source. A
path to a local `.jsonl` file is a benchmark of its own (`file_benchmark`).
Local copies and hub datasets name their fields differently (MATH-500's `problem` and `answer`,
Minerva's boxed `solution` locally but plain `answer` on the hub), so each benchmark lists the
field names it accepts, first match wins, and says how to turn that field into a gold answer. The
vision-language benchmarks (MathVista, MathVision, MathVerse, EMMA) also name their image fields
(paths relative to the local file, or hub images) and their multiple-choice options
(`eval.choices`): every image is checked when the benchmark is read, before a model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hicra.answers import (
    ANSWER_FIELDS,
    QUESTION_FIELDS,
    GoldMissing,
    gold_after_hashes,
    gold_answer,
    gold_boxed,
    gold_list,
    gold_number,
    gold_plain,
    not_text,
)
from hicra.errors import HicraError
from hicra.eval.choices import LETTERS, format_choices, gold_letter, parse_choices
from hicra.images import (
    IMAGE_FIELDS,
    ImageError,
    ImageSource,
    check_image,
    image_sources,
    strip_placeholders,
    undecoded,
)
from hicra.jsonl import JsonlError, read_jsonl, read_parquet


class BenchmarkError(HicraError):
    """A benchmark cannot be found or read; the message names the benchmark, file and row."""


@dataclass(frozen=True)
class Problem:
    """One benchmark question with its gold answer; `id` is unique within its benchmark."""

    benchmark: str
    id: str
    question: str
    gold: str  # a multiple-choice problem: the letter of the right option
    images: tuple[ImageSource, ...] = ()  # vision-language benchmarks: the problem's images
    choices: tuple[str, ...] = ()  # multiple choice: the options' texts in letter order
    where: str = field(default="", compare=False)  # "FILE, line N": named in errors
    row: Mapping[str, Any] | None = field(default=None, compare=False)  # for --checker SPEC

    @property
    def content_hash(self) -> str:
        """What a cached sample must match to be reused: a hash of the question as asked (options
        included) and the gold answer, so an edited or another file's problem is never scored
        with samples of a different question."""
        text = json.dumps([self.question, self.gold, list(self.choices)], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def problems_hash(problems: Sequence[Problem]) -> str:
    """A benchmark's content identity: the hash of its problems' hashes, in order."""
    joined = "\n".join(p.content_hash for p in problems)
    return hashlib.sha256(joined.encode("ascii")).hexdigest()[:16]


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
    file: str | None = None  # a user's own JSONL file (`file_benchmark`), read from there only
    # Vision-language benchmarks: one image per group (its first field present), in order.
    image_fields: tuple[tuple[str, ...], ...] = ()
    choices_field: str | None = None  # a list of options: multiple choice when not empty
    # (field, value) marking a multiple-choice row whose options are written into the question
    multiple_choice: tuple[str, str] | None = None
    # A user's file with an image column: its text-only rows stay text problems, and where its
    # image rows are ("3 of 10 rows, field 'image'; the first: FILE, line 2"), named in errors.
    images_optional: bool = False
    image_rows: str = ""

    @property
    def vision(self) -> bool:
        """Whether the problems come with images (only vision-language models can take them)."""
        return bool(self.image_fields)

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
        # Vision-language benchmarks (the paper's MiMO-VL table), read by VLMs only.
        Benchmark(
            name="mathvista",
            title="MathVista",
            folder="mathvista",
            hub=("AI4Math/MathVista", None, "testmini"),
            question_fields=("question",),
            gold_fields=(("answer", gold_plain),),  # the option's text for multiple choice
            id_fields=("pid", "id"),
            image_fields=(("decoded_image", "image"),),
            choices_field="choices",
            aliases=("mathvista_testmini", "mathvista-testmini"),
        ),
        Benchmark(
            name="mathvision",
            title="MathVision",
            folder="mathvision",
            hub=("MathLLMs/MathVision", None, "test"),
            question_fields=("question",),
            gold_fields=(("answer", gold_plain),),  # a letter for multiple choice
            image_fields=(("decoded_image", "image"),),
            choices_field="options",
            aliases=("math-vision", "math_vision", "math-v"),
        ),
        Benchmark(
            name="mathverse",
            title="MathVerse",
            folder="mathverse",
            hub=("AI4Math/MathVerse", "testmini", "testmini"),
            question_fields=("question",),
            gold_fields=(("answer", gold_plain),),
            id_fields=("sample_index", "id"),
            image_fields=(("image",),),
            multiple_choice=("question_type", "multi-choice"),
            aliases=("mathverse_testmini", "mathverse-testmini"),
        ),
        Benchmark(
            name="emma",
            title="EMMA",
            folder="emma",
            hub=("luckychao/EMMA", "Math", "test"),
            question_fields=("question",),
            gold_fields=(("answer", gold_plain),),
            id_fields=("pid", "id"),
            context_field="context",
            image_fields=tuple((f"image_{i}",) for i in range(1, 6)),
            choices_field="options",
            aliases=("emma_math", "emma-math"),
        ),
    )
}
# The columns of the paper's main results table (arXiv 2509.03646), in its order.
PAPER_BENCHMARKS = ("aime24", "aime25", "math500", "amc23", "minerva", "olympiadbench")
# The columns of the paper's vision-language table (MiMO-VL-7B on ViRL39K), in its order.
PAPER_VISION_BENCHMARKS = ("mathvista", "mathvision", "mathverse", "emma")
_ALIASES = {alias: b.name for b in BENCHMARKS.values() for alias in (b.folder, *b.aliases)}


def file_benchmark(path: str | os.PathLike[str]) -> Benchmark:
    """A local JSONL file of questions and gold answers as a benchmark (a held-out set, say).

    Its fields are found as for training data (question: question, problem, prompt, ...; answer:
    answer, final_answer, solution, ...; GSM8K's `#### n` and boxed solutions understood), and it
    is named after the file ("heldout.jsonl" -> "heldout").
    """
    file = Path(path).expanduser()
    name = file.name.split(".")[0] or "file"
    if name.lower() in BENCHMARKS or name.lower() in _ALIASES:
        name = f"file-{name}"
    field_name, rows = _image_column(file)
    return Benchmark(
        name=name,
        title=name,
        folder="",
        hub=("", None, ""),
        question_fields=QUESTION_FIELDS,
        gold_fields=tuple((f, gold_required) for f in ANSWER_FIELDS),
        file=str(file),
        image_fields=((field_name,),) if field_name else (),
        images_optional=True,
        image_rows=rows,
    )


def _has_image(value: Any) -> bool:
    """An image field's value holds an image: null, "" and [] mean a text-only row (as training
    reads it)."""
    return (
        value is not None and value != "" and not (isinstance(value, (list, tuple)) and not value)
    )


def _image_column(file: Path) -> tuple[str | None, str]:
    """The image field of a local JSONL benchmark (`images` or `image`, as training finds it, over
    every row) and where its image rows are; (None, "") for a text benchmark. Unreadable lines
    are left to `load_local`, which names them."""
    found: dict[str, list[int]] = {}
    total = 0
    try:
        for number, row in read_jsonl(file, on_error="skip"):
            total += 1
            for name in IMAGE_FIELDS:
                if _has_image(row.get(name)):
                    found.setdefault(name, []).append(number)
    except JsonlError:
        return None, ""
    name = next((n for n in IMAGE_FIELDS if n in found), None)
    if name is None:
        return None, ""
    lines = found[name]
    return name, f"{len(lines)} of {total} rows, field {name!r}; the first: {file}, line {lines[0]}"


def gold_required(value: Any) -> str:
    """Any gold format `gold_answer` understands; GoldMissing when none fits."""
    gold = gold_answer(value)
    if gold is None:
        raise GoldMissing("no usable answer")
    return gold


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called `name` (case-insensitive; folder names and aliases accepted), or a
    local JSONL file given by its path (`file_benchmark`)."""
    if name.strip().endswith((".jsonl", ".jsonl.gz")):
        if not Path(name.strip()).expanduser().is_file():
            raise BenchmarkError(f"benchmark file not found: {name.strip()}")
        return file_benchmark(name.strip())
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[key]


def parse_benchmarks(spec: str | Iterable[str]) -> list[Benchmark]:
    """Benchmarks from "math500,aime24" (or a list), in the order given, duplicates dropped.

    Files that share a name ("d1/test.jsonl", "d2/test.jsonl") are each named after their folder
    too ("d1-test", "d2-test"), so that none replaces another in the results.
    """
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: dict[str, Benchmark] = {}
    for name in names:
        if name.strip():
            bench = get_benchmark(name)
            key = str(Path(bench.file).resolve()) if bench.file else bench.name
            chosen.setdefault(key, bench)
    if not chosen:
        raise BenchmarkError("no benchmark given; known: " + ", ".join(BENCHMARKS))
    return _distinct_names(list(chosen.values()))


def _distinct_names(benches: list[Benchmark]) -> list[Benchmark]:
    """Each file benchmark whose name another benchmark has too gets its folder's name in front
    ("d2-test"), then a number ("d2-test-2") while that is still taken."""
    counts: dict[str, int] = {}
    for bench in benches:
        counts[bench.name] = counts.get(bench.name, 0) + 1
    out: list[Benchmark] = []
    taken = {b.name for b in benches if counts[b.name] == 1 or not b.file}
    for bench in benches:
        if bench.file and counts[bench.name] > 1:
            folder = Path(bench.file).resolve().parent.name or "file"
            base = name = f"{folder}-{bench.name}"
            number = 1
            while name in taken:
                number += 1
                name = f"{base}-{number}"
            bench = replace(bench, name=name, title=name)
        taken.add(bench.name)
        out.append(bench)
    return out


# --------------------------------------------------------------------------- rows -> problems
def _first(row: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any] | None:
    for name in names:
        if name in row and row[name] is not None:
            return name, row[name]
    return None


def problem_from_row(
    bench: Benchmark,
    row: Mapping[str, Any],
    where: str,
    index: int,
    base_dir: Path | None = None,
) -> Problem:
    """A Problem from one row; `where` ("FILE, line N" or "hub DATASET, row N") names it in errors,
    `base_dir` (the local file's folder) is where relative image paths start."""

    def fail(message: str) -> BenchmarkError:
        present = ", ".join(map(str, row)) or "none"
        return BenchmarkError(f"{bench.name}: {where}: {message} (fields present: {present})")

    found = _first(row, bench.question_fields)
    if found is None:
        named = next((n for n in bench.question_fields if n in row), None)
        if named is None:
            raise fail(f"no question field ({' or '.join(bench.question_fields)})")
        raise fail(f"{not_text(named, None)}, expected the question")
    if (wrong := not_text(*found)) is not None:
        raise fail(wrong)
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
        null = next((n for n, _ in bench.gold_fields if n in row and row[n] is None), None)
        if problems:
            raise fail(f"no usable answer ({wanted}): {'; '.join(problems)}")
        if null is not None:
            raise fail(f"{not_text(null, None)}, expected the gold answer")
        raise fail(f"no answer field ({wanted})")
    ident = _first(row, bench.id_fields)
    problem_id = str(ident[1]) if ident is not None else str(index)
    if not bench.image_fields and bench.choices_field is None and bench.multiple_choice is None:
        return Problem(bench.name, problem_id, question, gold, where=where, row=dict(row))
    try:
        images = _images(bench, row, where, base_dir)
    except ImageError as err:
        raise fail(str(err)) from None
    question = strip_placeholders(question) if images else question
    choices = _choices(bench, row, question, gold)
    if choices:
        letter = gold_letter(gold, choices)
        if letter is None:
            raise fail(f"gold answer {gold!r} is neither an option letter nor an option's text")
        gold = letter
        if bench.choices_field is not None and row.get(bench.choices_field):
            question = f"{question}\n\n{format_choices(choices)}"
    return Problem(bench.name, problem_id, question, gold, tuple(images), choices, where, dict(row))


def _images(
    bench: Benchmark, row: Mapping[str, Any], where: str, base_dir: Path | None
) -> list[ImageSource]:
    """The row's checked images, one per image-field group (the first field present wins)."""
    images: list[ImageSource] = []
    for group in bench.image_fields:
        found = _first(row, group)
        if found is not None:
            sources = image_sources(found[1], base_dir, f"{where}, field {found[0]!r}")
            for source in sources:
                check_image(source)
            images.extend(sources)
    if bench.image_fields and not images and not bench.images_optional:
        wanted = " or ".join(" / ".join(group) for group in bench.image_fields)
        raise ImageError(f"no image ({wanted})")
    return images


def _choices(bench: Benchmark, row: Mapping[str, Any], question: str, gold: str) -> tuple[str, ...]:
    """The options in letter order, () for a free-form row. Options shown only in the image
    (MathVerse's vision-only versions, some MathVision rows) are their letters, up to E."""
    listed = row.get(bench.choices_field) if bench.choices_field else None
    if isinstance(listed, (list, tuple)) and listed:
        return tuple(str(c).strip() for c in listed)
    if bench.multiple_choice is None:
        return ()
    name, value = bench.multiple_choice
    if str(row.get(name, "")).strip().lower() != value:
        return ()
    written = parse_choices(question)
    if written:
        return written
    letter = gold.strip().strip("()").upper()
    size = max(4, LETTERS.index(letter) + 1) if len(letter) == 1 and letter in LETTERS else 4
    return tuple(LETTERS[:size])


def _check_unique(bench: Benchmark, problems: list[Problem], where: list[str]) -> None:
    seen: dict[str, str] = {}
    for problem, place in zip(problems, where, strict=True):
        if problem.id in seen:
            raise BenchmarkError(
                f"{bench.name}: {place}: duplicate problem id {problem.id!r} (first at "
                f"{seen[problem.id]}); ids must be unique so that results can resume"
            )
        seen[problem.id] = place


LOCAL_NAMES = ("test.jsonl", "test.jsonl.gz", "test.parquet")  # in a benchmark folder, first wins
BUNDLED_NAME = "test.jsonl.gz"


def local_file(bench: Benchmark, data_dir: str | os.PathLike[str]) -> Path:
    """`DIR/<folder>/test.jsonl`, `test.jsonl.gz` or `test.parquet`; `DIR/<name>/...` too."""
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
    parquet = path.suffix == ".parquet"
    try:
        for number, row in read_parquet(path, 256) if parquet else read_jsonl(path):
            place = f"{path}, {'row' if parquet else 'line'} {number}"
            problems.append(problem_from_row(bench, row, place, len(problems), path.parent))
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
        data = undecoded(data)  # image columns as bytes: checked without decoding every image
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
    if bench.file is not None:
        return load_local(bench, Path(bench.file), limit)
    _, path = locate(bench, data_dir)
    return load_local(bench, path, limit) if path is not None else load_hub(bench, limit)


def source_of(bench: Benchmark, data_dir: str | os.PathLike[str] | None) -> str:
    """Where a benchmark is read from, for results files (see `locate`)."""
    if bench.file is not None:
        return str(Path(bench.file).resolve())
    return locate(bench, data_dir)[0]
