"""Training prompts and gold answers from local files, the hub, or reasoning-gym.

Every source becomes the same rows: `prompt` (chat messages), `answer` (gold answer text), `task`
("math" for math-verify checking, or "rg:<name>" for reasoning-gym's scorer), `rg_entry` (the
reasoning-gym entry as JSON, for its scorer) and `id`. Rows of a dataset with an `images` or `image`
column also carry their checked images (`train.images` builds the vision-language prompts). A
malformed row (or a missing, unreadable or too-large image) is an error naming the file and row, or
is skipped and counted when the caller asks for that.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hicra.answers import ANSWER_FIELDS, QUESTION_FIELDS, gold_answer, not_text
from hicra.context import ContextFit, check_prompt_lengths, long_prompts
from hicra.errors import HicraError
from hicra.images import (
    IMAGE_FIELDS,
    ImageError,
    ImageLimits,
    ImageSource,
    check_image,
    image_sources,
)
from hicra.jsonl import ReadStats, read_jsonl, read_parquet
from hicra.prompts import (  # noqa: F401 (PromptStyle: re-exported)
    BOXED_INSTRUCTION,
    PromptStyle,
    vision_messages,
)

LOCAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".csv")
PLACE = "_place"  # a row's place while it is read ("FILE, line 7"); not a dataset column


class DataError(HicraError):
    """A dataset cannot be used; the message names the source and, where it applies, the row."""


@dataclass(frozen=True)
class DataSpec:
    """What to train on (see `load_prompts`)."""

    source: str
    question_field: str | None = None
    answer_field: str | None = None
    split: str = "train"
    config_name: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    size: int = 1000
    seed: int = 0
    skip_bad_rows: bool = False
    limit: int | None = None
    image_field: str | None = None  # None: `images` or `image` when present
    image_limits: ImageLimits | None = None
    text_only_model: str | None = None  # set: image rows are an error naming this model
    # Reward functions of the user's (`--reward-funcs`): every column of the file reaches them as
    # it is; the gold answer is needed only when hicra's accuracy reward is one of them.
    keep_columns: bool = False
    answer_required: bool = True


def _pick(fields: Sequence[str], wanted: str | None, defaults: Sequence[str], what: str) -> str:
    if wanted is not None:
        return wanted
    for name in defaults:
        if name in fields:
            return name
    raise DataError(
        f"no {what} field: none of {', '.join(defaults)} is present (fields: {', '.join(fields)}); "
        f"name it with --{what}-field"
    )


def _suffix(path: Path) -> str:
    """The file type: one of LOCAL_SUFFIXES ("x.jsonl.gz" is ".jsonl.gz"), else the last suffix."""
    name = path.name.lower()
    return next((s for s in LOCAL_SUFFIXES if name.endswith(s)), path.suffix.lower())


def _rows_from_file(
    path: Path, stats: ReadStats, skip: bool
) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = _suffix(path)
    if suffix in (".jsonl", ".jsonl.gz"):
        yield from read_jsonl(path, on_error="skip" if skip else "raise", stats=stats)
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: not a valid UTF-8 JSON file ({err})") from None
        rows = data.get("data", data.get("rows")) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
        yield from ((i + 1, r) for i, r in enumerate(rows))
    elif suffix == ".csv":
        yield from _csv_rows(path, stats, skip)
    elif suffix == ".parquet":
        yield from read_parquet(path)
    else:
        raise DataError(
            f"{path}: unsupported file type {suffix!r}; use {', '.join(LOCAL_SUFFIXES)}"
        )


def _csv_rows(path: Path, stats: ReadStats, skip: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """CSV rows with the line they start on; a row that is not UTF-8 is an error naming its line,
    or with `skip` is skipped and counted (the bytes are read with surrogateescape to find it)."""
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            return
        if _not_utf8(header):
            raise DataError(f"{path}, line 1: the header is not UTF-8 text")
        start = reader.line_num + 1
        for values in reader:
            line, start = start, reader.line_num + 1
            if _not_utf8(values):
                if skip:
                    stats.skip("not UTF-8", line)
                    continue
                raise DataError(
                    f"{path}, line {line}: not UTF-8 text (save the file as UTF-8, or use "
                    "--skip-bad-rows to skip such rows)"
                )
            yield line, dict(zip(header, values, strict=False))


def _not_utf8(values: list[str]) -> bool:
    return any(any("\udc80" <= ch <= "\udcff" for ch in value) for value in values)


@dataclass(frozen=True)
class Schema:
    """A dataset's fields, found over all of its rows (not the first row only): a first row
    without an image says nothing about the others."""

    question: str
    answer: str
    image: str | None  # the image column, None when no row has one
    image_rows: int = 0  # rows with at least one image
    first_image_row: str = ""  # where the first of them is ("FILE, line 3")


def has_image(value: Any) -> bool:
    """Whether an image field's value holds an image: null, "" and [] mean a text-only row."""
    return (
        value is not None and value != "" and not (isinstance(value, (list, tuple)) and not value)
    )


def find_schema(rows: Sequence[tuple[int, Any]], spec: DataSpec, where: str, unit: str) -> Schema:
    """Question, answer and image fields over every row; a text-only model given image rows is
    refused here with their count and the first one's place."""
    fields: dict[str, None] = {}
    for number, row in rows:
        if not isinstance(row, Mapping):
            raise DataError(
                f"{where}, {unit} {number}: expected an object, got {type(row).__name__}"
            )
        fields.update(dict.fromkeys(row))
    names = list(fields)
    question = _pick(names, spec.question_field, QUESTION_FIELDS, "question")
    if spec.answer_required or spec.answer_field is not None:
        answer = _pick(names, spec.answer_field, ANSWER_FIELDS, "answer")
    else:  # the user's rewards read the columns they need
        answer = next((n for n in ANSWER_FIELDS if n in names), "")
    if spec.keep_columns:
        _check_column_names(names, where)
    image = image_field(names, spec, where, len(rows))
    with_images = [n for n, row in rows if image is not None and has_image(row.get(image))]
    first = f"{where}, {unit} {with_images[0]}" if with_images else ""
    if with_images and spec.text_only_model:
        raise DataError(
            f"{len(with_images)} of {len(rows)} rows of {where} have images (field {image!r}; the "
            f"first: {first}) but the model {spec.text_only_model} reads text only; use an "
            "image-text-to-text model (e.g. Qwen/Qwen2.5-VL-3B-Instruct), or drop the image rows"
        )
    return Schema(question, answer, image if with_images else None, len(with_images), first)


# Columns hicra writes for every row; a file's own column of the same name is replaced.
HICRA_COLUMNS = ("prompt", "question", "answer", "task", "rg_entry", "id", "images", "image_refs")


def _check_column_names(names: Sequence[str], where: str) -> None:
    """A column named like one of TRL's reward-call arguments would clash with it."""
    from hicra.train.reward_funcs import TRL_CALL_KEYS

    clash = [n for n in names if n in TRL_CALL_KEYS]
    if clash:
        raise DataError(
            f"{where}: column {clash[0]!r} has the name of an argument TRL gives every reward "
            f"function ({', '.join(TRL_CALL_KEYS)}); rename the column"
        )


def image_field(
    fields: Sequence[str], spec: DataSpec, where: str, rows: int | None = None
) -> str | None:
    """The image column among a dataset's `fields` (found over all `rows` of it): `spec.image_field`,
    else `images` or `image` when present, else None."""
    if spec.image_field:
        if spec.image_field not in fields:
            among = f" in any of its {rows} rows" if rows is not None else ""
            raise DataError(
                f"{where}: no image field {spec.image_field!r}{among} (fields: {', '.join(fields)})"
            )
        return spec.image_field
    return next((name for name in IMAGE_FIELDS if name in fields), None)


def row_images(value: Any, base_dir: Path | None, where: str, spec: DataSpec) -> list[ImageSource]:
    """The checked images of one row (`ImageError` says which is missing, unreadable or too big)."""
    sources = image_sources(value, base_dir, where)
    for source in sources:
        check_image(source, spec.image_limits)
    return sources


def _math_rows(
    rows: Iterator[tuple[int, Any]],
    spec: DataSpec,
    where: str,
    stats: ReadStats,
    base_dir: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """Training rows; the fields are found over every row first (`find_schema`). With an image
    column, every row carries `images` (empty for a text row): a VLM trains on both kinds."""
    unit = "line" if where.endswith((".jsonl", ".jsonl.gz", ".csv")) else "row"
    read = list(rows)
    if not read:
        return
    schema = find_schema(read, spec, where, unit)
    q_field, a_field, i_field = schema.question, schema.answer, schema.image
    columns = list(dict.fromkeys(k for _, row in read for k in row)) if spec.keep_columns else []
    for number, row in read:
        question = row.get(q_field)
        if spec.answer_required:
            answer = gold_answer(row.get(a_field))
        else:  # as it is in the file (text for the rollouts), never refused
            value = row.get(a_field) if a_field else None
            answer = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        place = f"{where}, {unit} {number}"
        problem = reason = None
        images: list[ImageSource] = []
        if (wrong := not_text(q_field, question)) is not None:
            problem = f"field {q_field!r} is missing" if q_field not in row else wrong
        elif answer is None:
            problem = _answer_problem(a_field, row)
        elif i_field is not None and has_image(row.get(i_field)):
            try:
                images = row_images(row.get(i_field), base_dir, place, spec)
            except ImageError as err:  # skipped rows are counted by kind, not by file
                problem, reason = f"field {i_field!r}: {err}", f"field {i_field!r}: {err.kind}"
        if problem:
            if spec.skip_bad_rows:
                stats.skip(reason or problem, number)
                continue
            raise DataError(f"{place}: {problem} (use --skip-bad-rows to skip)")
        record = {
            "question": question,
            "answer": answer,
            "task": "math",
            "rg_entry": "",
            "id": str(row.get("id", row.get("unique_id", number))),
            PLACE: place,
        }
        # the file's own columns as they are (None where a row lacks one), for the user's rewards;
        # hicra's parsed gold answer stays when its accuracy reward needs it
        record.update({k: row.get(k) for k in columns if k not in ("prompt", "images", PLACE)})
        if spec.answer_required:
            record["answer"] = answer
        if i_field is not None:
            record["images"] = images
        yield record


def _answer_problem(field_name: str, row: Mapping[str, Any]) -> str:
    """Why a row has no gold answer, as the row shows it."""
    if field_name not in row:
        return f"field {field_name!r} is missing"
    value = row[field_name]
    if value is None or (isinstance(value, str) and not value.strip()):
        return str(not_text(field_name, value))
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"field {field_name!r} holds no usable answer: {shown}"


def reasoning_gym_seed(seed: int, size: int) -> int:
    """The seed handed to reasoning-gym for a run seed: seed * size.

    reasoning-gym draws item i from Random(seed + i), so runs seeded 1 and 2 would share all but
    one item (seed 2's item i is seed 1's item i + 1). With seed * size, seed s draws from
    [s * size, (s + 1) * size): distinct seeds never share a draw, and each seed's set is
    independent of the others' (on a small task the same question can still come up by chance).
    """
    return seed * size


def _reasoning_gym_rows(spec: DataSpec) -> Iterator[dict[str, Any]]:
    import reasoning_gym

    task = spec.source[3:]
    if task not in reasoning_gym.factory.DATASETS:
        close = [n for n in reasoning_gym.factory.DATASETS if task[:4] in n][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DataError(f"unknown reasoning-gym task {task!r}{hint}")
    try:
        dataset = reasoning_gym.create_dataset(
            task, size=spec.size, seed=reasoning_gym_seed(spec.seed, spec.size), **spec.kwargs
        )
    except (TypeError, ValueError, AssertionError) as err:
        raise DataError(
            f"reasoning-gym task {task!r} rejected its options {dict(spec.kwargs)}: {err}"
        ) from None
    for index, entry in enumerate(dataset):
        record = json.dumps(entry, default=str)
        if index == 0:  # the reward scores the JSON copy: its own gold answer must still score 1
            try:
                score = dataset.score_answer(str(entry["answer"]), json.loads(record))
            except Exception as err:
                score, detail = 0.0, f" ({type(err).__name__}: {err})"
            else:
                detail = ""
            if score != 1.0:
                raise DataError(
                    f"reasoning-gym task {task!r} cannot be scored after its entry is stored as "
                    f"JSON: its own gold answer scores {score}{detail}"
                )
        yield {
            "question": entry["question"],
            "answer": str(entry["answer"]),
            "task": spec.source,
            "rg_entry": record,
            "id": str(index),
            PLACE: f"{spec.source}, entry {index}",
        }


def _hub_rows(spec: DataSpec, stats: ReadStats) -> Iterator[dict[str, Any]]:
    import datasets

    from hicra.images import undecoded
    from hicra.models import hub_online

    if not hub_online() and not os.environ.get("HF_HUB_OFFLINE"):
        raise DataError(
            f"dataset {spec.source!r} is not a local file or folder, not a reasoning-gym task "
            "(rg:NAME), and the Hugging Face hub is unreachable (set HF_HUB_OFFLINE=1 to use "
            "the local datasets cache)"
        )
    try:
        dataset = datasets.load_dataset(spec.source, spec.config_name, split=spec.split)
    except Exception as err:
        raise DataError(
            f"dataset {spec.source!r} is not a local file, a reasoning-gym task (rg:NAME), and could not "
            f"be loaded from the hub ({type(err).__name__}: {str(err)[:200]})"
        ) from None
    dataset = undecoded(dataset)  # image columns as bytes: checked without decoding every image
    yield from _math_rows(((i + 1, r) for i, r in enumerate(dataset)), spec, spec.source, stats)


def load_rows(spec: DataSpec) -> tuple[list[dict[str, Any]], ReadStats]:
    """Rows {question, answer, task, rg_entry, id} for a spec, and what was skipped."""
    rows, _, stats = load_rows_with_places(spec)
    return rows, stats


def load_rows_with_places(spec: DataSpec) -> tuple[list[dict[str, Any]], list[str], ReadStats]:
    """`load_rows`, and where each row comes from ("FILE, line 7"), for messages."""
    stats = ReadStats()
    source = spec.source
    if source.startswith("rg:"):
        rows: Iterator[dict[str, Any]] = _reasoning_gym_rows(spec)
        where = source
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            candidates = [path / f"{spec.split}{s}" for s in LOCAL_SUFFIXES]
            found = [c for c in candidates if c.is_file()]
            if not found:
                raise DataError(
                    f"dataset folder {path} has no {spec.split}.jsonl/.jsonl.gz/.json/.parquet/.csv"
                )
            path = found[0]
        if _suffix(path) in LOCAL_SUFFIXES or path.exists():
            if not path.is_file():
                raise DataError(f"dataset file not found: {path}")
            where = str(path)
            rows = _math_rows(
                _rows_from_file(path, stats, spec.skip_bad_rows), spec, where, stats, path.parent
            )
        else:
            where = source
            rows = _hub_rows(spec, stats)
    out, places = [], []
    for row in rows:
        places.append(row.pop(PLACE))
        out.append(row)
        if spec.limit is not None and len(out) >= spec.limit:
            break
    if not out:
        skipped = (
            f" ({stats.skipped_count} rows skipped: {stats.summary()})" if stats.skipped else ""
        )
        raise DataError(f"dataset {where} has no usable rows{skipped}")
    return out, places, stats


def build_dataset(
    spec: DataSpec, style: PromptStyle, fit: ContextFit | None = None
) -> tuple[Any, ReadStats]:
    """A `datasets.Dataset` with chat `prompt`s for TRL's GRPOTrainer, and the read statistics
    (rows with images: prompts with image blocks and an `images` column, see `train.images`).

    With `fit`, every prompt that could be too long is counted (`context.long_prompts`), and rows
    that leave no room for the completion in the model's context are refused before training (TRL would generate from them anyway, at a
    cost that grows with the square of their length). A VLM's image tokens are not counted.
    """
    import datasets

    rows, places, stats = load_rows_with_places(spec)
    if fit is not None and fit.context is not None:

        def conversation(question: str) -> list[dict[str, Any]]:
            messages = style.messages(question)  # a VLM's template reads content blocks
            return vision_messages(messages, 0) if fit.blocks else messages

        found = long_prompts(fit, [r["question"] for r in rows], conversation)
        lengths = [(tokens, places[i]) for i, tokens in found]
        check_prompt_lengths(lengths, fit.context, fit.new_tokens, fit.new_tokens_flag)
    if "images" in rows[0]:  # an image column: every row has `images`, [] for a text row
        from hicra.train.images import vision_dataset

        return vision_dataset(rows, style), stats
    records = [{**row, "prompt": style.messages(row["question"])} for row in rows]
    try:
        return datasets.Dataset.from_list(records), stats
    except (TypeError, ValueError, OverflowError) as err:  # pyarrow's errors are ValueErrors
        raise DataError(f"{spec.source}: {mixed_column(records) or err}") from None


def mixed_column(records: Sequence[Mapping[str, Any]]) -> str | None:
    """Why a table cannot hold the rows: the first column whose values differ in kind."""
    for key in records[0]:
        first: dict[str, int] = {}  # kind -> first row (1-based) holding it
        for number, record in enumerate(records, 1):
            value = record.get(key)
            if value is not None:
                kind = "number" if isinstance(value, (int, float)) else type(value).__name__
                first.setdefault(kind, number)
        if len(first) > 1:
            shown = ", ".join(f"{kind} (first in row {n})" for kind, n in first.items())
            return f"column {key!r} holds values of different kinds: {shown}; one kind a column"
    return None
