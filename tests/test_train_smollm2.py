"""The real bundled model through `hicra train`'s built-in default, for one short step."""

from __future__ import annotations

import json

import pytest

from hicra.cli import main


@pytest.mark.slow
def test_default_run_one_step_on_smollm2(tmp_path):
    out = tmp_path / "run"
    args = [
        "train",
        "--output-dir",
        str(out),
        "--max-steps",
        "1",
        "--num-generations",
        "4",
        "--per-device-train-batch-size",
        "4",
        "--max-completion-length",
        "24",
        "--save-steps",
        "1",
    ]
    assert main(args) == 0
    (row,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert row["step"] == 1 and row["loss"] is not None
    assert 0.0 <= row["hicra/accuracy"] <= 1.0
    assert row["hicra/planning_ratio"] > 0  # the one-shot example's "let me ... so" is imitated
    assert row["hicra/execution_entropy"] > 0
    rollouts = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 4 and all(
        r["prompt"].startswith("State the final answer") for r in rollouts
    )
    assert (out / "final_model" / "model.safetensors").exists()
