"""Rollout dumps as other trainers write them, for the `hicra report` tests and benchmark.

`write_verl_step` writes exactly what verl 0.9.1's `RayPPOTrainer._write_generations` writes
(verl/trainer/ppo/ray_trainer.py, lines 454-477): `{dump_path}/{global_steps}.jsonl`, one JSON
object a rollout with `input`, `output`, `gts`, `score`, `step`, then every reward extra whose
list has one value per rollout, `json.dumps(entry, ensure_ascii=False, default=str)` a line.
tests/test_report_verl_dump.py checks the report on files that verl's own function wrote.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any


def write_verl_step(
    dump_path: Path,
    global_steps: int,
    inputs: list[str],
    outputs: list[str],
    gts: list[Any],
    scores: list[float],
    reward_extra_infos_dict: dict[str, list[Any]] | None = None,
) -> Path:
    """verl's `_write_generations`, line for line (same field order, same JSON options)."""
    os.makedirs(dump_path, exist_ok=True)
    filename = os.path.join(dump_path, f"{global_steps}.jsonl")
    n = len(inputs)
    base_data = {
        "input": inputs,
        "output": outputs,
        "gts": gts,
        "score": scores,
        "step": [global_steps] * n,
    }
    for k, v in (reward_extra_infos_dict or {}).items():
        if len(v) == n:
            base_data[k] = v
    with open(filename, "w") as f:
        for i in range(n):
            entry = {k: v[i] for k, v in base_data.items()}
            f.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
    return Path(filename)


# Completions whose strategic grams (paper preset, leftmost-longest) are known by hand.
BUT_WAIT = "But wait, 3 + 4 = 7."  # one "but wait"
LET_ME_VERIFY = "Let me verify: 3 + 4 = 7."  # one "let me verify"
PLAIN = "3 + 4 = 7."  # no gram
PROMPT = "What is 3 + 4?"


def verl_dump(folder: Path, steps: int = 3) -> Path:
    """`steps` steps of four rollouts; step s has s - 1 of them right (acc), two gram kinds."""
    for step in range(1, steps + 1):
        outputs = [BUT_WAIT, LET_ME_VERIFY, PLAIN, BUT_WAIT]
        acc = [i < step - 1 for i in range(4)]
        write_verl_step(
            folder,
            step,
            inputs=[PROMPT] * 4,
            outputs=outputs,
            gts=["7"] * 4,
            scores=[1.0 if a else 0.0 for a in acc],
            reward_extra_infos_dict={"acc": acc, "pred": ["7"] * 4},
        )
    return folder


def trl_rows(steps: int = 3) -> list[dict[str, Any]]:
    """TRL-style logged completions: `{step, prompt, completion, reward}`, a step's rows together."""
    rows = []
    for step in range(1, steps + 1):
        for i, completion in enumerate([BUT_WAIT, PLAIN]):
            rows.append(
                {"step": step, "prompt": PROMPT, "completion": completion, "reward": 0.5 * i + step}
            )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as JSON lines; gzip-compressed when the name ends in .gz."""
    data = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path
