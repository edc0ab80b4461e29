"""The benchmark runner behind `hicra eval`: sample, check, record, resume, score.

Every finished problem appends all of its samples to OUTPUT/samples.jsonl in one flushed write,
so a killed evaluation loses at most the problems in flight; a rerun with the same settings skips
every sample already there for the same problem: samples are keyed by a hash of the problem's
question and gold answer (`Problem.content_hash`) and the sample index, never by a position or a
file name, so another file of the same name or an edited question is sampled afresh. OUTPUT/eval_config.json records what
decides a completion (model, checker, sampling, prompt instruction); resuming with other values is
refused, since mixing them would make the scores meaningless. Scores are recomputed from
samples.jsonl at the end of every run, so results.json always matches the samples on disk.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hicra.context import check_prompt_lengths, context_length, new_tokens_that_fit
from hicra.errors import HicraError
from hicra.eval.backends import choose_backend, make_backend
from hicra.eval.checkers import CHECKERS, Checker, make_checker
from hicra.eval.choices import check_with_choices
from hicra.eval.registry import (
    Benchmark,
    Problem,
    load_benchmark,
    parse_benchmarks,
    problems_hash,
    source_of,
)
from hicra.eval.results import (
    MARKDOWN_FILE,
    RESULTS_FILE,
    average,
    summarize_benchmark,
    write_results,
)
from hicra.eval.sampling import (
    Backend,
    Request,
    SamplingSettings,
    encode_prompt,
    load_eval_tokenizer,
    prompt_format,
)
from hicra.eval.vision import check_modality
from hicra.folder_lock import FolderLock
from hicra.jsonl import append_jsonl, read_jsonl
from hicra.limits import EVAL as EVAL_LIMITS
from hicra.limits import check_limits
from hicra.models import model_fingerprint, resolve_model_path
from hicra.output_folder import disk_full, disk_full_error, make_output_folder, set_aside
from hicra.prompts import PromptStyle

SAMPLES_FILE = "samples.jsonl"
CONFIG_FILE = "eval_config.json"
DEFAULT_MAX_NEW_TOKENS = 4096


@dataclass
class EvalConfig:
    """Everything `hicra eval` takes; defaults follow the paper where it says anything."""

    model: str
    benchmarks: Sequence[str]
    output_dir: str
    data_dir: str | None = None
    samples: int | None = None  # None: per benchmark (32 AIME24/25, 4 AMC23, else 1)
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int | None = None  # None: 4,096, or less when the model's context is short
    limit: int | None = None
    checker: str = "math-verify"
    backend: str = "auto"
    batch_size: int | None = None  # HF rows per generate call; None: 16 on CPU, 64 on a GPU
    dtype: str = "auto"
    seed: int = 0
    verify_workers: int = 2
    verify_timeout: float = 5.0
    progress: bool = True
    prompt: PromptStyle = field(default_factory=PromptStyle)  # the paper's: boxed instruction


@dataclass
class _Work:
    bench: Benchmark
    problem: Problem
    first_sample: int  # the first missing sample index
    count: int  # how many samples are missing
    prompt_ids: list[int]


class EvalError(HicraError):
    """An evaluation cannot start or resume; the message says why and what to do."""


# --------------------------------------------------------------------------- sample store
def _repair_tail(path: Path) -> None:
    """Drop a final line left unfinished by a killed run, so that appends start on a new line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        size = handle.seek(0, os.SEEK_END)
        keep, block = 0, 1 << 16
        for end in range(size, 0, -block):  # the last newline, read backwards in blocks
            start = max(0, end - block)
            handle.seek(start)
            found = handle.read(end - start).rfind(b"\n")
            if found >= 0:
                keep = start + found + 1
                break
        handle.truncate(keep)


SampleKey = tuple[str, int]  # (Problem.content_hash, sample index)


def read_samples(path: Path) -> tuple[dict[SampleKey, dict[str, Any]], int]:
    """Finished samples keyed by (problem hash, sample index), the last copy winning, and how
    many rows carry no problem hash (written by an older hicra: never reused, since nothing
    shows which question they answered)."""
    rows: dict[SampleKey, dict[str, Any]] = {}
    unverifiable = 0
    if not path.is_file():
        return rows, unverifiable
    for number, row in read_jsonl(path, allow_truncated_last_line=True):
        try:
            sample = int(row["sample"])
            row["correct"] = bool(row["correct"])
            str(row["benchmark"]), str(row["id"])
        except (KeyError, TypeError, ValueError):
            raise EvalError(
                f"{path}, line {number}: not an evaluation sample (needs benchmark, id, sample, "
                "correct); use another --output-dir"
            ) from None
        if not isinstance(row.get("problem_hash"), str):
            unverifiable += 1
            continue
        rows[(row["problem_hash"], sample)] = row
    return rows, unverifiable


def _identity(config: EvalConfig, model_path: str, tokenizer: Any) -> dict[str, Any]:
    """What must not change between an evaluation and its resumption."""
    local = Path(model_path)
    return {
        "model_path": str(local.resolve()) if local.exists() else model_path,
        "model_fingerprint": model_fingerprint(model_path),
        "checker": config.checker,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_new_tokens": config.max_new_tokens,
        "seed": config.seed,
        "instruction": config.prompt.instruction,
        "system_prompt": config.prompt.system_prompt,
        "few_shot": config.prompt.to_dict()["few_shot"],
        "prompt_format": prompt_format(tokenizer),
    }


def _check_resume(output_dir: Path, identity: dict[str, Any]) -> None:
    path = output_dir / CONFIG_FILE
    if path.is_file() and (output_dir / SAMPLES_FILE).is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise EvalError(f"{path}: unreadable ({err}); use another --output-dir") from None
        if not isinstance(saved, dict):
            raise EvalError(f"{path}: not an evaluation config; use another --output-dir")
        changed = [
            f"{key} {saved.get(key)!r} -> {value!r}"
            for key, value in identity.items()
            if saved.get(key) != value and key != "model_fingerprint"
        ]
        if not changed and saved.get("model_fingerprint") != identity["model_fingerprint"]:
            _set_aside(output_dir)  # same model folder and settings, but other weights
        elif changed:
            raise EvalError(
                f"{output_dir} holds an evaluation with other settings ({'; '.join(changed)}); "
                "rerun with the same settings to resume it, or use another --output-dir"
            )
    staging = path.with_name(f".{CONFIG_FILE}.tmp")
    staging.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")
    os.replace(staging, path)


def _set_aside(output_dir: Path) -> None:
    """The model's weights changed since the samples were made: keep the old files, renamed, and
    start fresh (their scores belong to the old weights)."""
    moved = []
    for name in (SAMPLES_FILE, RESULTS_FILE, MARKDOWN_FILE):
        path = output_dir / name
        if path.is_file():
            moved.append(set_aside(path, f"{path.stem}.", path.suffix).name)
    print(
        f"hicra eval: the model's weights or tokenizer changed since {output_dir} was evaluated "
        f"(fingerprint differs): evaluating afresh; the old files are kept as {', '.join(moved)}",
        file=sys.stderr,
    )


# --------------------------------------------------------------------------- the runner
def default_output_dir(model: str) -> str:
    """`RUN/eval` for a hicra run folder, else `eval-<model name>` in the current folder."""
    path = Path(model).expanduser()
    if path.is_dir() and not (path / "config.json").exists():
        return str(path / "eval")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.name or model).strip("_") or "model"
    return f"eval-{name}"


def model_label_for(model: str) -> str:
    """A short name for tables: the alias or hub id, or the folder name ("RUN/checkpoint-50")."""
    path = Path(model).expanduser()
    if not path.exists():
        return model
    path = path.resolve()
    if path.name == "final_model" or path.name.startswith("checkpoint-"):
        return f"{path.parent.name}/{path.name}"
    return path.name


def _chunks(work: list[_Work], rows: int) -> Iterator[list[_Work]]:
    """Consecutive work items with about `rows` samples each (at least one problem)."""
    chunk: list[_Work] = []
    size = 0
    for item in work:
        chunk.append(item)
        size += item.count
        if size >= rows:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _progress(total: int, done: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=done,
        unit="problem",
        desc="hicra eval",
        disable=None if enabled else True,  # None: shown on a terminal only
        dynamic_ncols=True,
    )


def _default_new_tokens(lengths: list[tuple[int, str]], context: int | None) -> int:
    """DEFAULT_MAX_NEW_TOKENS, lowered (and said on stderr) when the context cannot hold it."""
    longest = max((n for n, _ in lengths), default=0)
    chosen = new_tokens_that_fit(longest, context, DEFAULT_MAX_NEW_TOKENS)
    if chosen < DEFAULT_MAX_NEW_TOKENS:
        print(
            f"hicra eval: --max-new-tokens {chosen:,}, not the default {DEFAULT_MAX_NEW_TOKENS:,}: "
            f"the model's context of {context:,} tokens holds the longest prompt ({longest:,} "
            f"tokens) and {chosen:,} more",
            file=sys.stderr,
        )
    return chosen


def _check_user_checker(
    spec: str, names: list[str], data_dir: str | None, limit: int | None
) -> None:
    """A `--checker SPEC` that does not import, or that cannot take the first problem's row, fails
    here, before the model loads."""
    checker = make_checker(spec)
    first = next(
        (p for b in parse_benchmarks(names) for p in load_benchmark(b, data_dir, limit)[:1]), None
    )
    if first is not None and hasattr(checker, "dry_call"):
        checker.dry_call(first.row or {"answer": first.gold}, first.where or first.benchmark)


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Run (or resume) an evaluation; write samples.jsonl, results.json, results.md."""
    if config.checker not in CHECKERS:  # the user's: imported and dry-called before the model
        _check_user_checker(config.checker, config.benchmarks, config.data_dir, config.limit)
    check_limits(vars(config), EVAL_LIMITS)  # NaN temperature, zero samples, ...
    benches = parse_benchmarks(config.benchmarks)  # files of one name get distinct names
    # Read every benchmark before loading a model: bad data fails in a second, not minutes.
    problems = {b.name: load_benchmark(b, config.data_dir, config.limit) for b in benches}
    sources = {b.name: source_of(b, config.data_dir) for b in benches}
    samples = {b.name: config.samples or b.default_samples for b in benches}
    backend_name = choose_backend(config.backend)  # fails before any folder is made
    model_path = resolve_model_path(config.model)
    check_modality(model_path, config.model, benches)  # image benchmarks need a VLM
    tokenizer = load_eval_tokenizer(model_path)
    prompts = _encode_all(problems, tokenizer, config.prompt)
    lengths = [
        (len(prompts[p.benchmark, p.id]), p.where or f"{p.benchmark} problem {p.id}")
        for rows in problems.values()
        for p in rows
    ]
    context = context_length(model_path)
    if config.max_new_tokens is None:
        config = replace(config, max_new_tokens=_default_new_tokens(lengths, context))
    # before any folder or model: a too-long prompt would hang generation
    check_prompt_lengths(lengths, context, config.max_new_tokens, "--max-new-tokens")
    settings = SamplingSettings(
        config.temperature, config.top_p, config.max_new_tokens, config.seed
    )
    source = _Source(backend_name, model_path, tokenizer, prompts)

    output_dir = make_output_folder(Path(config.output_dir).expanduser(), error=EvalError)
    lock = FolderLock(output_dir, "evaluation folder").acquire()  # one writer per folder
    try:
        return _evaluate_in(
            output_dir, config, source, benches, problems, sources, samples, settings
        )
    except Exception as err:
        if isinstance(err, HicraError) or not disk_full(err, output_dir):
            raise
        then = "rerun the same command: the finished problems are kept and the rest resumes"
        raise disk_full_error(err, output_dir, "evaluation folder", then) from None
    finally:
        lock.release()


@dataclass(frozen=True)
class _Source:
    """The model side of an evaluation: backend name, model folder (or hub id), tokenizer."""

    backend_name: str
    model_path: str
    tokenizer: Any
    prompts: dict[tuple[str, str], list[int]]  # (benchmark, problem id) -> prompt token ids


def _encode_all(
    problems: dict[str, list[Problem]], tokenizer: Any, style: PromptStyle
) -> dict[tuple[str, str], list[int]]:
    """Every problem's prompt token ids (counted against the context, then generated from)."""
    return {
        (p.benchmark, p.id): encode_prompt(tokenizer, p.question, style)
        for rows in problems.values()
        for p in rows
    }


def _evaluate_in(
    output_dir: Path,
    config: EvalConfig,
    source: _Source,
    benches: list[Benchmark],
    problems: dict[str, list[Problem]],
    sources: dict[str, str],
    samples: dict[str, int],
    settings: SamplingSettings,
) -> dict[str, Any]:
    """Resume or start the evaluation in a locked output folder; write its results."""
    backend_name, model_path, tokenizer = source.backend_name, source.model_path, source.tokenizer
    identity = _identity(config, model_path, tokenizer)
    _check_resume(output_dir, identity)
    samples_path = output_dir / SAMPLES_FILE
    _repair_tail(samples_path)
    done, unverifiable = read_samples(samples_path)
    if unverifiable:
        print(
            f"hicra eval: {unverifiable} samples in {samples_path} name no problem hash (an older "
            "hicra wrote them): they are not reused, their problems are sampled again",
            file=sys.stderr,
        )

    work = _plan(benches, problems, samples, done, source.prompts)
    finished = sum(len(p) for p in problems.values()) - len(work)
    checker = make_checker(config.checker, config.verify_workers, config.verify_timeout)
    backend: Backend | None = None
    try:
        if work:  # a finished evaluation rescores without loading the model
            backend = make_backend(
                backend_name,
                model_path,
                tokenizer,
                batch_size=config.batch_size,
                dtype=config.dtype,
                seed=config.seed,
            )
            timing = _run(work, backend, settings, checker, samples_path, done, finished, config)
        else:
            timing = {"generation_seconds": 0.0, "generated_tokens": 0}
    finally:
        checker.close()

    summaries = {}
    for bench in benches:
        rows = {
            (p.id, s): done[(p.content_hash, s)]
            for p in problems[bench.name]
            for s in range(samples[bench.name])
            if (p.content_hash, s) in done
        }
        summaries[bench.name] = summarize_benchmark(
            bench, problems[bench.name], rows, samples[bench.name], sources[bench.name]
        )
        summaries[bench.name]["content_hash"] = problems_hash(problems[bench.name])
    results = _results(config, identity, backend, backend_name, summaries)
    seconds, tokens = timing["generation_seconds"], timing["generated_tokens"]
    results["timing"] = {
        "generation_seconds": round(seconds, 3),
        "generated_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
        "resumed_problems": finished,
        "generated_problems": len(work),
    }
    write_results(output_dir, results)
    return results


def _plan(
    benches: list[Benchmark],
    problems: dict[str, list[Problem]],
    samples: dict[str, int],
    done: dict[SampleKey, dict[str, Any]],
    prompts: dict[tuple[str, str], list[int]],
) -> list[_Work]:
    """The problems that still miss samples (by their content hash), and from which index on.

    Sorted by prompt length (stable), so that each generation batch pads little.
    """
    work = []
    for bench in benches:
        wanted = samples[bench.name]
        for problem in problems[bench.name]:
            have = 0
            while (problem.content_hash, have) in done:
                have += 1
            if have < wanted:
                ids = prompts[problem.benchmark, problem.id]
                work.append(_Work(bench, problem, have, wanted - have, ids))
    return sorted(work, key=lambda w: len(w.prompt_ids))


def _run(
    work: list[_Work],
    backend: Backend,
    settings: SamplingSettings,
    checker: Checker,
    samples_path: Path,
    done: dict[SampleKey, dict[str, Any]],
    finished: int,
    config: EvalConfig,
) -> dict[str, Any]:
    """Generate, check and record the planned work chunk by chunk, with a progress bar."""
    tokens, seconds = 0, 0.0
    bar = _progress(finished + len(work), finished, config.progress)
    try:
        for chunk in _chunks(work, backend.chunk_rows):
            start = time.perf_counter()
            requests = [
                Request(
                    w.prompt_ids,
                    w.count,
                    f"{w.bench.name}/{w.problem.id}/{w.first_sample}",
                    images=w.problem.images,  # vision-language problems
                    question=w.problem.question,
                    style=config.prompt,
                )
                for w in chunk
            ]
            completions = backend.generate(requests, settings)
            seconds += time.perf_counter() - start
            tokens += sum(c.tokens for row in completions for c in row)
            _record(chunk, completions, checker, samples_path, done)
            bar.update(len(chunk))
            bar.set_postfix_str(f"{tokens / max(seconds, 1e-9):,.0f} tok/s")
    finally:
        bar.close()
    return {"generation_seconds": seconds, "generated_tokens": tokens}


def _record(
    chunk: list[_Work],
    completions: list[list[Any]],
    checker: Checker,
    path: Path,
    done: dict[SampleKey, dict[str, Any]],
) -> None:
    """Check a chunk's completions, then append each problem's rows in one write."""
    texts = [c.text for row in completions for c in row]
    golds = [w.problem.gold for w, row in zip(chunk, completions, strict=True) for _ in row]
    choices = [w.problem.choices for w, row in zip(chunk, completions, strict=True) for _ in row]
    if hasattr(checker, "check_rows"):  # the user's checker reads the whole row
        problems = [w.problem for w, row in zip(chunk, completions, strict=True) for _ in row]
        rows = [p.row or {"answer": p.gold} for p in problems]
        verdicts = iter(checker.check_rows(texts, rows, [p.where or p.id for p in problems]))
    else:
        verdicts = iter(check_with_choices(checker, texts, golds, choices))  # by letter or text
    for item, row in zip(chunk, completions, strict=True):
        if len(row) != item.count:
            raise EvalError(f"the backend returned {len(row)} completions, expected {item.count}")
        records = []
        for offset, completion in enumerate(row):
            verdict = next(verdicts)
            records.append(
                {
                    "benchmark": item.bench.name,
                    "id": item.problem.id,
                    "problem_hash": item.problem.content_hash,
                    "sample": item.first_sample + offset,
                    "gold": item.problem.gold,
                    "completion": completion.text,
                    "answer": verdict.answer,
                    "correct": verdict.correct,
                    "status": verdict.status,
                    "checker": checker.name,
                    "tokens": completion.tokens,
                    "finish_reason": completion.finish_reason,
                }
            )
        append_jsonl(path, records)
        for record in records:
            done[(record["problem_hash"], record["sample"])] = record


def _results(
    config: EvalConfig,
    identity: dict[str, Any],
    backend: Backend | None,
    backend_name: str,
    summaries: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    from hicra import __version__

    return {
        "hicra_version": __version__,
        "label": model_label_for(config.model),
        "model": config.model,
        "model_path": identity["model_path"],
        "checker": config.checker,
        "backend": backend.name if backend is not None else backend_name,
        "batch_size": getattr(backend, "batch_size", config.batch_size),
        "generation": {
            **{k: v for k, v in vars(config).items() if k in _GENERATION_KEYS},
            **config.prompt.to_dict(),
            "prompt_format": identity["prompt_format"],
        },
        "limit": config.limit,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "benchmarks": summaries,
        "average": {"avg@k": average(summaries)},
    }


_GENERATION_KEYS = ("temperature", "top_p", "max_new_tokens", "seed", "samples", "dtype")
