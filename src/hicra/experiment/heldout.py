"""A held-out problem set for an experiment: drawn from a task with its own seed, minus every question
that any run of the experiment trains on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from hicra.experiment import HELDOUT_FILE
from hicra.experiment.spec import ExperimentError, ExperimentSpec
from hicra.jsonl import append_jsonl
from hicra.output_folder import set_aside

DEFAULT_SIZE = 500
DEFAULT_SEED = 10_007
HELDOUT_STAMP = ".heldout-settings.json"  # the eval.heldout settings heldout.jsonl was drawn with


def training_questions(spec: ExperimentSpec, folder: Path) -> set[str]:
    """The questions of every arm x seed's training set (reasoning-gym tasks depend on the seed)."""
    from hicra.train.config import TrainArgs
    from hicra.train.data import load_rows
    from hicra.train.runner import data_spec

    names = {f.name for f in dataclasses.fields(TrainArgs)}
    seen: set[str] = set()
    specs = set()
    for arm in spec.arms:
        for seed in spec.seeds:
            config = spec.run_config(folder, arm, seed)
            args = TrainArgs(**{k: v for k, v in config.items() if k in names})
            data = data_spec(args, seed)
            key = repr(dataclasses.astuple(data))
            if key in specs:
                continue
            specs.add(key)
            rows, _ = load_rows(data)
            seen.update(_norm(row["question"]) for row in rows)
    return seen


def _norm(question: str) -> str:
    return " ".join(question.split()).lower()


def build_heldout(spec: ExperimentSpec, folder: Path) -> Path:
    """DIR/heldout.jsonl (id, question, answer), made once: `eval.heldout`'s task drawn with its
    own seed, without any question a run trains on. Its size is checked against what was asked."""
    from hicra.train.data import DataSpec, load_rows

    path = folder / HELDOUT_FILE
    options: dict[str, Any] = spec.eval["heldout"]
    stamp = folder / HELDOUT_STAMP
    wanted = json.dumps(options, sort_keys=True, default=str)
    if path.is_file():
        if not stamp.is_file() or stamp.read_text(encoding="utf-8").strip() == wanted:
            return path
        set_aside(path, f"{path.name}.stale-")
    size = int(options.get("size", DEFAULT_SIZE))
    seed = int(options.get("seed", DEFAULT_SEED))
    kwargs = options.get("dataset_kwargs") or {}
    exclude = training_questions(spec, folder)
    # 16x the size asked: with independent seeds, the training sets can cover most of a small
    # task (arith2's 4 seeds x 5,000 draws hold 11,438 of its 16,200 problems)
    data = DataSpec(source=str(options["dataset"]), kwargs=kwargs, size=size * 16, seed=seed)
    rows, _ = load_rows(data)
    kept, questions = [], set()
    for row in rows:
        key = _norm(row["question"])
        if key in exclude or key in questions:
            continue
        questions.add(key)
        kept.append({"id": str(len(kept)), "question": row["question"], "answer": row["answer"]})
        if len(kept) == size:
            break
    if len(kept) < size:
        raise ExperimentError(
            f"{spec.source}: eval.heldout: only {len(kept)} of {size} problems of "
            f"{options['dataset']} are not in the training sets; ask for fewer, or a larger task"
        )
    staging = path.with_name(f".{path.name}.tmp")
    staging.unlink(missing_ok=True)
    append_jsonl(staging, kept)
    staging.replace(path)
    stamp.write_text(wanted + "\n", encoding="utf-8")
    return path
