"""Two CPU processes (gloo) under `accelerate launch`: training works and every planning metric is
the token-weighted combination of both processes, not a mean of their means."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import accelerate_launch


def _launch(model_dir: Path, out: Path) -> subprocess.CompletedProcess:
    worker = Path(__file__).with_name("dist_worker.py")
    cmd = [*accelerate_launch(), str(worker), str(model_dir), str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def two_process_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    result = _launch(tiny_model_dir, out)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return ranks, metrics


def test_two_processes_train(two_process_run):
    ranks, metrics = two_process_run
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["backend"] for r in ranks] == ["gloo", "gloo"]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert all(m["loss"] is not None for m in metrics)


def test_planning_metrics_are_token_weighted_across_processes(two_process_run):
    ranks, metrics = two_process_run
    differs = False
    for step_index, row in enumerate(metrics):
        gen = [
            [s for s in r["sums"] if s["kind"] == "generation"][step_index]["local"] for r in ranks
        ]
        loss = [[s for s in r["sums"] if s["kind"] == "loss"][step_index]["local"] for r in ranks]
        n_plan = gen[0][0] + gen[1][0]
        n_all = n_plan + gen[0][1] + gen[1][1]
        assert row["hicra/planning_ratio"] == pytest.approx(n_plan / n_all)
        adv = (gen[0][2] + gen[1][2]) / n_plan
        assert row["hicra/planning_advantage"] == pytest.approx(adv, rel=1e-5, abs=1e-7)
        p_sum, p_n = loss[0][0] + loss[1][0], loss[0][1] + loss[1][1]
        e_sum, e_n = loss[0][2] + loss[1][2], loss[0][3] + loss[1][3]
        assert row["hicra/planning_entropy"] == pytest.approx(p_sum / p_n, rel=1e-6)
        assert row["hicra/execution_entropy"] == pytest.approx(e_sum / e_n, rel=1e-6)
        mean_of_means = (
            gen[0][0] / (gen[0][0] + gen[0][1]) + gen[1][0] / (gen[1][0] + gen[1][1])
        ) / 2
        differs |= abs(mean_of_means - n_plan / n_all) > 1e-9
    assert differs, "the two processes never differed: the test could not tell the two means apart"


def test_high_entropy_thresholds_are_taken_over_both_processes(two_process_run):
    """The top-30% threshold (credit and fork metrics) is the quantile over the whole batch of
    both processes, so splitting one global batch over 1 or 2 processes cannot change it."""
    import torch

    ranks, metrics = two_process_run
    gathers = [r["gathers"] for r in ranks]
    assert len(gathers[0]) == len(gathers[1]) > 0
    for mine, theirs in zip(*gathers, strict=True):
        assert mine["kind"] == theirs["kind"]
        union = mine["local"] + theirs["local"]  # rank order: rank 0, then rank 1
        assert mine["all"] == pytest.approx(union) and theirs["all"] == pytest.approx(union)
        assert len(mine["local"]) > 0 and len(theirs["local"]) > 0
    credit = [g for g in gathers[0] if g["kind"] == "credit_entropies"]
    quantiles = [q for q in ranks[0]["quantiles"] if q["kind"] == "credit_entropies"]
    assert len(credit) == len(quantiles) == 3  # one generation per step
    for g, q, other in zip(credit, quantiles, ranks[1]["quantiles"], strict=True):
        expected = float(torch.quantile(torch.tensor(g["all"]), 0.7))
        assert q["result"] == pytest.approx(expected) and other["result"] == pytest.approx(expected)
        local_only = float(torch.quantile(torch.tensor(g["local"]), 0.7))
        assert local_only != pytest.approx(expected)  # a per-process threshold would differ
    fork = [g for g in gathers[0] if g["kind"].startswith("fork_")]
    for step, row in enumerate(metrics):
        values = torch.tensor(fork[2 * step]["all"])
        planning = torch.tensor(fork[2 * step + 1]["all"]).bool()
        high = values >= torch.quantile(values, 0.7)
        share = float((high & planning).sum() / planning.sum())
        assert row["hicra/fork/planning_high_entropy_share"] == pytest.approx(share)
