"""The report's held-out evaluation: curves, overlays, the summary column (synthetic runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hicra.report import curves
from hicra.report.build import build_report
from hicra.report.runs import load_run
from tests.report_fixtures import make_run

# (step, gsm8k accuracy, pass@2, pass@4, heldout accuracy, pass@2, pass@4)
EVALS = [(10, 0.2, 0.3, 0.5, 0.6, 0.7, 0.9), (20, 0.4, 0.5, 0.6, 0.8, 0.9, 1.0)]


def add_heldout(folder, scale=1.0):
    lines = []
    for step, *values in EVALS:
        g1, g2, g4, h1, h2, h4 = (v * scale for v in values)
        lines.append(
            {
                "step": step,
                "eval/gsm8k/accuracy": g1,
                "eval/gsm8k/pass@1": g1,
                "eval/gsm8k/pass@2": g2,
                "eval/gsm8k/pass@4": g4,
                "eval/gsm8k/maj@4": g1,
                "eval/heldout/accuracy": h1,
                "eval/heldout/pass@1": h1,
                "eval/heldout/pass@2": h2,
                "eval/heldout/pass@4": h4,
                "eval/accuracy": (g1 + h1) / 2,
                "eval/seconds": 3.0,
            }
        )
    group = [{"step": s, "hicra/pass@1": 0.5, "hicra/pass@2": 0.7} for s in range(1, 31)]
    with open(folder / "metrics.jsonl", "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(x) + "\n" for x in lines + group)
    return folder


@pytest.fixture
def heldout_runs(tmp_path):
    a = add_heldout(make_run(tmp_path / "a", steps=30, eval_every=0))
    b = add_heldout(make_run(tmp_path / "b", credit="grpo", steps=30, eval_every=0), 0.5)
    return a, b


def test_heldout_curves_by_hand(heldout_runs):
    run = load_run(heldout_runs[0])
    found = curves.heldout(run)
    assert sorted(found) == ["gsm8k", "heldout"]
    assert sorted(found["gsm8k"]) == ["accuracy", "maj@4", "pass@1", "pass@2", "pass@4"]
    acc = found["gsm8k"]["accuracy"]
    assert acc.values[np.isfinite(acc.values)].tolist() == [0.2, 0.4]
    by_k = curves.heldout_pass_at_k(run)
    assert list(by_k) == [1, 2, 4]
    at = list(run.steps).index(20)
    assert by_k[1].values[at] == pytest.approx((0.4 + 0.8) / 2)
    assert by_k[4].values[at] == pytest.approx((0.6 + 1.0) / 2)
    assert list(curves.group_pass_at_k(run)) == [1, 2]
    # TRL's own eval of hicra/accuracy is not a benchmark
    assert "hicra" not in found


def test_report_draws_heldout_and_fills_the_column(heldout_runs, tmp_path):
    result = build_report(list(heldout_runs), tmp_path / "out")
    assert (tmp_path / "out" / "heldout.png").stat().st_size > 10_000
    data = json.loads(result.files["json"].read_text())
    first, second = data["runs"]
    assert first["heldout"]["gsm8k"]["steps"] == [10, 20]
    assert first["heldout"]["heldout"]["pass@4"] == [0.9, 1.0]
    assert first["final_eval_accuracy"] == pytest.approx(0.6) and first["final_eval_step"] == 20
    assert first["eval_accuracy_auc"] == pytest.approx(0.5)
    assert second["heldout"]["gsm8k"]["final_accuracy"] == pytest.approx(0.2)
    page = result.files["html"].read_text()
    assert "held-out accuracy (last evaluation)" in page
    assert "60.0% <span class='muted'>(step 20, gsm8k 40.0%, heldout 80.0%)" in page
    assert "plot-heldout" in page


def test_runs_without_heldout_have_no_heldout_figure(tmp_path):
    run = make_run(tmp_path / "plain", steps=20, eval_every=0)
    result = build_report([run], tmp_path / "out")
    assert "heldout" not in result.files and not (tmp_path / "out" / "heldout.png").exists()


def test_experiment_mean_band_by_hand(heldout_runs):
    from hicra.experiment.heldout_figure import experiment_heldout_png, points
    from hicra.experiment.report import mean_band

    steps = np.array([10, 20])
    band = mean_band(points([(steps, np.array([0.2, 0.4])), (steps, np.array([0.4, 0.6]))]))
    assert band.steps.tolist() == [10, 20] and band.mean == pytest.approx([0.3, 0.5])
    # n=2: t(0.975, 1) = 12.706, sd = 0.1414: half width 12.706 * 0.1414 / sqrt(2) = 1.2706
    assert band.high - band.mean == pytest.approx([1.2706, 1.2706], abs=1e-4)
    three = mean_band(
        points(
            [
                (steps, np.array([0.2, 0.4])),
                (steps, np.array([0.4, 0.6])),
                (np.array([10]), np.array([0.3])),
            ]
        )
    )
    # step 10: n=3, mean 0.3, sd 0.1, t(0.975, 2) = 4.3027: half width 0.2484; step 20: n=2
    assert three.mean == pytest.approx([0.3, 0.5])
    assert (three.high - three.mean)[0] == pytest.approx(0.2484, abs=1e-4)
    assert mean_band(points([(steps, np.array([np.nan, np.nan]))])) is None
    runs = [load_run(r) for r in heldout_runs]
    png = experiment_heldout_png({"hicra": [runs[0]], "grpo": [runs[1]]}, 5)
    assert png is not None and png[:4] == b"\x89PNG"
    plain = load_run(make_run(heldout_runs[0].parent / "plain", steps=10, eval_every=0))
    assert experiment_heldout_png({"grpo": [plain]}, 5) is None


def test_heldout_final_and_area_by_hand(heldout_runs):
    run = load_run(heldout_runs[0])  # eval/accuracy 0.4 at step 10, 0.6 at step 20
    final, area = curves.heldout_summary(run)
    assert final == pytest.approx(0.6) and area == pytest.approx(0.5)  # (0.4 + 0.6) / 2
    assert curves.heldout_summary(run, horizon=15) == pytest.approx((0.4, 0.4))
    assert curves.heldout_summary(run, horizon=5) is None


def test_report_help_names_heldout_png(capsys):
    from hicra.cli import main

    with pytest.raises(SystemExit) as done:
        main(["report", "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    description = out[: out.index("positional arguments")]
    assert "heldout.png (when a run evaluated held-out sets" in description
