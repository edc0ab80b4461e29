"""Held-out accuracy while training: score the current policy on benchmarks every N steps.

The set is read with `hicra eval`'s registry (bundled benchmark names or a .jsonl file), asked with
the run's own prompt (system prompt, instruction, few-shot turns: as `hicra eval --prompt-of RUN`),
checked with its checker and scored with its functions (avg@k, unbiased pass@k, maj@k), so an
in-training number and a later `hicra eval` of the same checkpoint mean the same thing.

Generation uses what the trainer already holds, never a second copy of the weights
(`train.heldout_generation`): on CPU (or a GPU without vLLM) batched Hugging Face `generate` on the
policy being trained; with `use_vllm`, TRL's own engine (untested here: no GPU).

Each evaluation writes RUN/heldout/step-N/samples.jsonl and results.json, and logs
`eval/<benchmark>/accuracy` (and `pass@K`, `maj@K` for K > 1 samples), `eval/accuracy` (the mean
over benchmarks) and `eval/seconds` at step N, to metrics.jsonl and every `report_to` backend.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hicra.errors import HicraError
from hicra.eval.checkers import make_checker
from hicra.eval.choices import check_with_choices
from hicra.eval.passk import k_values
from hicra.eval.registry import (
    Benchmark,
    Problem,
    load_benchmark,
    parse_benchmarks,
    problems_hash,
    source_of,
)
from hicra.eval.results import summarize_benchmark
from hicra.eval.sampling import Completion, Request, SamplingSettings, encode_prompt
from hicra.jsonl import append_jsonl, read_jsonl
from hicra.prompts import PromptStyle
from hicra.run_folder import METRICS_FILE, Metric, heldout_step_dir
from hicra.train.callbacks import as_trainer_logs
from hicra.train.heldout_generation import generate_hf, generate_vllm

SAMPLES_FILE, RESULTS_FILE = "samples.jsonl", "results.json"
CHECKER = "math-verify"
SAMPLED_TEMPERATURE = 0.6  # with several samples and no --eval-temperature (hicra eval's default)
TOP_P = 0.95


@dataclass(frozen=True)
class HeldoutSet:
    """The benchmarks and their problems, read once before the model loads (bad data fails fast)."""

    benchmarks: tuple[Benchmark, ...]
    problems: dict[str, list[Problem]]
    sources: dict[str, str]
    style: PromptStyle

    @classmethod
    def load(cls, spec: str, limit: int | None, style: PromptStyle) -> HeldoutSet:
        benches = parse_benchmarks(spec)
        for bench in benches:
            if bench.vision:
                raise HicraError(
                    f"eval_benchmarks: {bench.name} has images; held-out evaluation during "
                    "training scores text benchmarks (use hicra eval on a checkpoint)"
                )
            if bench.name == "hicra":
                raise HicraError("eval_benchmarks: a benchmark may not be named 'hicra'")
        problems = {b.name: load_benchmark(b, None, limit) for b in benches}
        sources = {b.name: source_of(b, None) for b in benches}
        return cls(tuple(benches), problems, sources, style)

    @property
    def hashes(self) -> dict[str, str]:
        """Each benchmark's content hash (`hicra eval`'s): a held-out curve is one problem set."""
        return {b.name: problems_hash(self.problems[b.name]) for b in self.benchmarks}

    def check_context(self, tokenizer: Any, context: int | None, config: Any) -> None:
        """Refuse, before any model trains, held-out prompts that leave no room for the held-out
        completion length in the model's context (`hicra eval`'s check)."""
        from hicra.context import check_prompt_lengths

        lengths = [
            (len(encode_prompt(tokenizer, p.question, self.style)), p.where or f"{b.name} {p.id}")
            for b in self.benchmarks
            for p in self.problems[b.name]
        ]
        flag = "--eval-max-new-tokens"
        if config.eval_max_new_tokens is None:
            flag += " (default: --max-completion-length)"
        new_tokens = HeldoutSettings.from_config(config).sampling.max_new_tokens
        check_prompt_lengths(lengths, context, new_tokens, flag)


# Held-out settings that do something only with --eval-benchmarks, and their unset values.
HELDOUT_ONLY = (
    ("eval_steps", None),
    ("eval_limit", None),
    ("eval_samples", 1),
    ("eval_temperature", None),
    ("eval_max_new_tokens", None),
)


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_heldout_flags(config: Any) -> None:
    """`--eval-benchmarks ''` is refused like `' , '` (it turned evaluation off without a word), and
    held-out settings without `--eval-benchmarks` are refused (they were ignored)."""
    spec = config.eval_benchmarks
    if spec is not None and not str(spec).strip():
        raise HicraError(
            "--eval-benchmarks is empty: name benchmarks (math500, gsm8k, ...) or .jsonl files, "
            "or leave it out to train without held-out evaluation"
        )
    if spec:
        return
    given = [
        f"--{name.replace('_', '-')} {_shown(getattr(config, name))}"
        for name, unset in HELDOUT_ONLY
        if getattr(config, name) != unset
    ]
    if given:
        raise HicraError(
            f"{', '.join(given)} without --eval-benchmarks: held-out evaluation is off, so "
            f"{'it' if len(given) == 1 else 'they'} would do nothing; add --eval-benchmarks "
            "(e.g. math500) or leave them out"
        )


@dataclass(frozen=True)
class HeldoutSettings:
    """How the held-out set is sampled: one greedy completion, or k sampled ones."""

    samples: int
    sampling: SamplingSettings

    @classmethod
    def from_config(cls, config: Any) -> HeldoutSettings:
        samples = int(config.eval_samples)
        temperature = config.eval_temperature
        if temperature is None:
            temperature = 0.0 if samples == 1 else SAMPLED_TEMPERATURE
        max_new = config.eval_max_new_tokens or config.max_completion_length
        return cls(samples, SamplingSettings(temperature, TOP_P, max_new, config.seed))


def eval_steps(config: Any, max_steps: int) -> int | None:
    """Every how many steps to evaluate (`eval_steps` below 1 is a fraction of the run, as in
    transformers); None: only at the end."""
    every = config.eval_steps
    if every is None:
        return None
    if every < 1:
        return max(1, round(every * max_steps))
    return int(every)


def is_due(step: int, every: int | None, max_steps: int) -> bool:
    """An evaluation runs every `every` steps and at the last step."""
    return step > 0 and (step == max_steps or (every is not None and step % every == 0))


def evaluated_steps(folder: str | Path, benchmarks: Sequence[str]) -> set[int]:
    """Steps whose held-out scores for every benchmark are already in metrics.jsonl."""
    path = Path(folder) / METRICS_FILE
    keys = [Metric.heldout(b, "accuracy") for b in benchmarks]
    done = set()
    if path.is_file():
        for _, row in read_jsonl(path, on_error="skip", allow_truncated_last_line=True):
            if all(row.get(k) is not None for k in keys) and isinstance(row.get("step"), int):
                done.add(row["step"])
    return done


def heldout_metrics(summaries: dict[str, dict[str, Any]], samples: int) -> dict[str, float]:
    """The metrics.jsonl keys of one evaluation from `summarize_benchmark` results."""
    logs: dict[str, float] = {}
    for name, summary in summaries.items():
        logs[Metric.heldout(name, "accuracy")] = summary["avg@k"]
        if samples > 1:
            for k in k_values(samples):
                logs[Metric.heldout(name, f"pass@{k}")] = summary["pass@k"][str(k)]
            logs[Metric.heldout(name, f"maj@{samples}")] = summary["maj@k"]
    accuracies = [s["avg@k"] for s in summaries.values()]
    logs[Metric.EVAL_ACCURACY] = sum(accuracies) / len(accuracies)
    return logs


# --------------------------------------------------------------------------- the evaluator
class HeldoutEvaluator:
    """Runs the held-out evaluations of one training run (see the module docstring)."""

    def __init__(self, trainer: Any, heldout: HeldoutSet) -> None:
        self.trainer = trainer
        self.heldout = heldout
        self.settings = HeldoutSettings.from_config(trainer.args)
        self.tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
        self.folder = Path(trainer.args.output_dir)
        self.done: set[int] = set()
        self.prompt_ids = {
            (b.name, p.id): encode_prompt(self.tokenizer, p.question, heldout.style)
            for b in heldout.benchmarks
            for p in heldout.problems[b.name]
        }

    @classmethod
    def for_run(
        cls, trainer: Any, heldout: HeldoutSet | None, run_config: dict[str, Any]
    ) -> HeldoutEvaluator | None:
        """The run's evaluator, None without `eval_benchmarks`. `heldout`: the set, read already;
        else read here, asked with the prompt fields of `run_config`."""
        if not trainer.args.eval_benchmarks:
            return None
        if heldout is None:
            style = PromptStyle.of_run(run_config)
            heldout = HeldoutSet.load(trainer.args.eval_benchmarks, trainer.args.eval_limit, style)
        return cls(trainer, heldout)

    def start(self) -> None:
        """Called when training starts or resumes: evaluations already logged are not redone."""
        self.done = evaluated_steps(self.folder, [b.name for b in self.heldout.benchmarks])

    def due(self, step: int) -> bool:
        max_steps = self.trainer.state.max_steps
        every = eval_steps(self.trainer.args, max_steps)
        return is_due(step, every, max_steps) and step not in self.done

    def log_if_due(self) -> None:
        """Run a due evaluation and log it at the current step (the trainer's
        `_maybe_log_save_evaluate` calls this before the step's checkpoint is saved: a checkpoint
        at step N means the evaluation at N is in metrics.jsonl, so a resume never redoes it)."""
        trainer = self.trainer
        step = trainer.state.global_step
        if not self.due(step):
            return
        logs = as_trainer_logs(self.run(step))
        trainer.state.log_history.append({**logs, "step": step})
        # straight to the callbacks (metrics.jsonl, report_to backends): GRPOTrainer.log would
        # add and clear the step's training metrics; on_log clears should_log, which the
        # step's own training log (in super) still needs
        should_log = trainer.control.should_log
        trainer.control = trainer.callback_handler.on_log(
            trainer.args, trainer.state, trainer.control, logs
        )
        trainer.control.should_log = should_log

    def _my_share(self) -> tuple[list[tuple[Benchmark, Problem]], int]:
        """This process's problems (round robin), and how many copies of its first one pad it to
        the longest share: sharded models (FSDP, ZeRO-3) need every process to make the same
        number of generate calls. The padding's completions are dropped."""
        work = [(b, p) for b in self.heldout.benchmarks for p in self.heldout.problems[b.name]]
        acc = self.trainer.accelerator
        share = work[acc.process_index :: acc.num_processes]
        longest = -(-len(work) // acc.num_processes)
        return share, (longest - len(share)) if share else 0

    def _generate(self, requests: list[Request]) -> list[list[Completion]]:
        if getattr(self.trainer, "use_vllm", False):
            return generate_vllm(self.trainer, self.tokenizer, requests, self.settings.sampling)
        return generate_hf(self.trainer, self.tokenizer, requests, self.settings.sampling)

    def run(self, step: int) -> dict[str, float]:
        """Evaluate the current policy; returns the metrics (on the main process; {} elsewhere)."""
        from accelerate.utils import gather_object

        start = time.perf_counter()
        share, padding = self._my_share()
        n = self.settings.samples
        requests = [
            Request(self.prompt_ids[(b.name, p.id)], n, f"{b.name}/{p.id}/0")
            for b, p in share + share[:1] * padding
        ]
        completions = self._generate(requests)[: len(share)]
        records = self._check(share, completions)
        everything = [r for part in gather_object([records]) for r in part]
        self.done.add(step)
        if not self.trainer.accelerator.is_main_process:
            return {}
        summaries = self._summaries(everything)
        logs = heldout_metrics(summaries, n)
        logs[Metric.EVAL_SECONDS] = round(time.perf_counter() - start, 3)
        self._write(step, everything, summaries, logs)
        return logs

    def _check(
        self, share: list[tuple[Benchmark, Problem]], completions: list[list[Completion]]
    ) -> list[dict[str, Any]]:
        texts = [c.text for row in completions for c in row]
        golds = [p.gold for (_, p), row in zip(share, completions, strict=True) for _ in row]
        choices = [p.choices for (_, p), row in zip(share, completions, strict=True) for _ in row]
        checker = make_checker(CHECKER)
        try:
            verdicts = iter(check_with_choices(checker, texts, golds, choices))
        finally:
            checker.close()
        records = []
        for (bench, problem), row in zip(share, completions, strict=True):
            for sample, completion in enumerate(row):
                verdict = next(verdicts)
                records.append(
                    {
                        "benchmark": bench.name,
                        "id": problem.id,
                        "sample": sample,
                        "gold": problem.gold,
                        "completion": completion.text,
                        "answer": verdict.answer,
                        "correct": verdict.correct,
                        "status": verdict.status,
                        "checker": CHECKER,
                        "tokens": completion.tokens,
                        "finish_reason": completion.finish_reason,
                    }
                )
        return records

    def _summaries(self, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        summaries = {}
        for bench in self.heldout.benchmarks:
            rows = {(r["id"], r["sample"]): r for r in records if r["benchmark"] == bench.name}
            summaries[bench.name] = summarize_benchmark(
                bench,
                self.heldout.problems[bench.name],
                rows,
                self.settings.samples,
                self.heldout.sources[bench.name],
            )
            summaries[bench.name]["content_hash"] = self.heldout.hashes[bench.name]
        return summaries

    def _write(
        self,
        step: int,
        records: list[dict[str, Any]],
        summaries: dict[str, dict[str, Any]],
        logs: dict[str, float],
    ) -> None:
        from hicra import __version__

        folder = heldout_step_dir(self.folder, step)
        folder.mkdir(parents=True, exist_ok=True)
        samples = folder / SAMPLES_FILE
        samples.unlink(missing_ok=True)  # a rerun of this step (after a resume) starts afresh
        append_jsonl(samples, records)
        sampling = self.settings.sampling
        results = {
            "hicra_version": __version__,
            "step": step,
            "checker": CHECKER,
            "backend": "vllm" if getattr(self.trainer, "use_vllm", False) else "hf",
            "generation": {
                "samples": self.settings.samples,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "max_new_tokens": sampling.max_new_tokens,
                "seed": sampling.seed,
                **self.heldout.style.to_dict(),
            },
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "seconds": logs[Metric.EVAL_SECONDS],
            "benchmarks": summaries,
            "average": {"avg@k": logs[Metric.EVAL_ACCURACY]},
        }
        tmp = folder / f".{RESULTS_FILE}.tmp"
        tmp.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        tmp.replace(folder / RESULTS_FILE)
