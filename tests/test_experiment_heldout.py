"""`hicra experiment analyze` on in-training held-out accuracy: final value and area under the
curve, compared between arms (hand-computed on synthetic run folders)."""

from __future__ import annotations

import json

import pytest

from hicra.experiment.analysis import analyze, load_experiment
from tests.test_experiment import make_run, spec_file

# arm -> seed -> eval/accuracy at steps 10 and 20
HELDOUT = {"grpo": {1: (0.2, 0.4), 2: (0.3, 0.5)}, "hicra": {1: (0.4, 0.6), 2: (0.5, 0.9)}}


def test_training_heldout_final_and_area(tmp_path):
    folder = tmp_path / "exp"
    spec_file(folder, {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}}, seeds=(1, 2))
    for arm, seeds in HELDOUT.items():
        for seed, (at10, at20) in seeds.items():
            run = make_run(folder, arm, seed, [0.5] * 20)
            with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
                for step, value in ((10, at10), (20, at20)):
                    handle.write(json.dumps({"step": step, "eval/accuracy": value}) + "\n")
    results = analyze(load_experiment(folder))
    grpo, hicra = results["arms"]["grpo"], results["arms"]["hicra"]
    assert grpo["training_heldout_final"]["mean"] == pytest.approx(0.45)  # (0.4 + 0.5) / 2
    assert hicra["training_heldout_final"]["mean"] == pytest.approx(0.75)
    # area / span: seed means (0.3, 0.4) for grpo, (0.5, 0.7) for hicra
    assert grpo["training_heldout_auc"]["mean"] == pytest.approx(0.35)
    assert hicra["training_heldout_auc"]["mean"] == pytest.approx(0.6)
    final = next(c for c in results["comparisons"] if c["metric"] == "training_heldout_final")
    area = next(c for c in results["comparisons"] if c["metric"] == "training_heldout_auc")
    assert final["mean_diff"] == pytest.approx(0.3) and final["n"] == 2  # diffs 0.2, 0.4
    assert area["mean_diff"] == pytest.approx(0.25)  # diffs 0.2, 0.3
    assert any("held-out accuracy in training (area)" in v for v in results["verdicts"])
    row = next(r for r in results["runs"] if r["arm"] == "hicra" and r["seed"] == 2)
    assert row["training_heldout_final"] == pytest.approx(0.9)
