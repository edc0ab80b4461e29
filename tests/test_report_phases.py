"""Phase detection on curves whose change points are known (hand-checkable ones first)."""

from __future__ import annotations

import numpy as np
import pytest

from hicra.report.phases import detect_phases, fit_hinge, read_signal, smooth
from tests.report_fixtures import curves


def test_smooth_is_a_centered_moving_average_that_keeps_lines_straight():
    assert smooth(np.array([1, 2, 3, 10, 5.0]), 3).tolist() == [1, 2, 5, 6, 5]
    # Width 5: the second point can only take 3 (symmetric), the middle one 5.
    assert smooth(np.array([0, 3, 0, 0, 6, 0, 0.0]), 5).tolist() == [0, 1, 1.8, 1.8, 1.2, 2, 0]
    line = np.arange(20.0) * 0.5 + 3
    np.testing.assert_allclose(smooth(line, 7), line)
    np.testing.assert_array_equal(smooth(line, 4), smooth(line, 5))  # even widths round up
    np.testing.assert_array_equal(smooth(line, 1), line)
    gappy = np.array([1, np.nan, 3, 5, np.nan, 7.0])  # NaNs are skipped, and stay NaN
    np.testing.assert_array_equal(smooth(gappy, 3), [1, np.nan, 3, 5, np.nan, 7])


def test_hinge_recovers_an_exact_breakpoint():
    x = np.arange(1, 11)
    fit = fit_hinge(x, np.array([5, 4, 3, 2, 1, 1, 1, 1, 1, 1.0]))
    assert fit.breakpoint == 5
    assert fit.slope_before == pytest.approx(-1) and fit.slope_after == pytest.approx(0, abs=1e-9)
    assert fit.intercept == pytest.approx(6)
    assert fit.sse == pytest.approx(0, abs=1e-12) and fit.improvement == pytest.approx(1)
    np.testing.assert_allclose(fit.predict(x), [5, 4, 3, 2, 1, 1, 1, 1, 1, 1], atol=1e-9)


def test_hinge_on_large_irregular_step_numbers_and_long_curves():
    x = np.array([1000, 1010, 1020, 1040, 1050, 1070, 1080, 1100, 1110])
    y = np.where(x <= 1050, 2.0, 2.0 + 0.1 * (x - 1050))  # flat, then rising from step 1050
    fit = fit_hinge(x, y)
    assert fit.breakpoint == 1050
    assert fit.slope_before == pytest.approx(0, abs=1e-9)
    assert fit.slope_after == pytest.approx(0.1)
    # More points than the coarse grid of candidates: the refinement still lands exactly.
    x = np.arange(1, 3001)
    fit = fit_hinge(x, np.where(x <= 1234, -0.002 * x, -0.002 * 1234.0))
    assert fit.breakpoint == 1234


def test_hinge_needs_three_points_a_side():
    assert fit_hinge(np.arange(5), np.arange(5.0)) is None
    assert fit_hinge(np.arange(6), np.arange(6.0)).breakpoint == 2  # the only candidate
    assert fit_hinge(np.arange(8), np.array([np.nan] * 3 + [1.0] * 5)) is None


@pytest.mark.parametrize(("change", "seed"), [(15, 0), (25, 1), (40, 2), (25, 3), (30, 4)])
@pytest.mark.parametrize("credit", ["grpo", "hicra"])
def test_detects_the_known_change_of_realistic_runs(change, seed, credit):
    values = curves(60, change, credit, seed, noise=1.0)
    result = detect_phases(
        np.arange(1, 61),
        values["hicra/execution_entropy"],
        values["hicra/semantic_entropy"] / values["hicra/semantic_entropy"][0],
        values["hicra/accuracy"],
        window=5,
    )
    assert abs(result.step - change) <= 3, result.notes
    assert result.confidence == "high", result.notes
    assert all(s.accepted for s in result.signals.values()), result.notes


def test_noisier_curves_stay_close_or_say_they_are_unsure():
    errors = []
    for seed in range(10):
        values = curves(80, 35, "grpo", seed, noise=3.0)
        result = detect_phases(
            np.arange(1, 81),
            values["hicra/execution_entropy"],
            values["hicra/semantic_entropy"],
            values["hicra/accuracy"],
        )
        if result.step is not None and result.confidence != "low":
            errors.append(abs(result.step - 35))
    assert len(errors) >= 7 and max(errors) <= 8


def test_a_straight_fall_is_not_a_phase_change():
    x = np.arange(1, 41)
    rng = np.random.default_rng(0)
    signal = read_signal("execution_entropy", x, 1.0 - 0.01 * x + rng.normal(0, 0.01, 40), 5)
    assert not signal.accepted and signal.step is None
    assert "more than a straight line" in signal.reason or "does not fall" in signal.reason


def test_wrong_shapes_are_rejected_with_reasons():
    x = np.arange(1, 31)
    rising_then_flat = np.minimum(x, 15) * 0.1
    signal = read_signal("execution_entropy", x, rising_then_flat, 1)
    assert not signal.accepted and "does not fall and then flatten" in signal.reason
    falling_then_flat = np.maximum(30 - x, 15) * 0.1
    signal = read_signal("accuracy", x, falling_then_flat, 1)
    assert not signal.accepted and "does not start rising" in signal.reason
    assert read_signal("accuracy", x, np.full(30, np.nan), 5).reason == "accuracy: not logged"


def test_pure_noise_finds_nothing():
    rng = np.random.default_rng(5)
    x = np.arange(1, 61)
    result = detect_phases(x, *(rng.normal(1, 0.05, 60) for _ in range(3)))
    assert result.step is None and result.confidence == "low"
    assert result.notes[0] == "no curve shows a phase change"


def test_short_runs_have_low_confidence():
    x = np.arange(1, 9)
    entropy = np.array([1.0, 0.8, 0.6, 0.4, 0.4, 0.4, 0.4, 0.4])
    rise = np.array([1.0, 1.0, 1.0, 1.0, 1.2, 1.4, 1.6, 1.8])
    result = detect_phases(x, entropy, rise, rise, window=1)
    assert result.step == 4 and result.confidence == "low"
    assert result.notes[0] == "only 8 logged points (fewer than 10)"
    result = detect_phases(x[:3], entropy[:3], None, rise[:3])  # a run that just started
    assert result.step is None and result.confidence == "low"
    assert result.notes == [
        "only 3 logged points (fewer than 10): too short to tell",
        "execution entropy: only 3 points",
        "accuracy: only 3 points",
        "not logged: semantic entropy",
    ]


def test_disagreeing_signals_lower_the_confidence():
    x = np.arange(1, 101)
    entropy = np.where(x < 20, 1.0 - 0.02 * (x - 1), 1.0 - 0.02 * 19)  # flattens at step 20
    rise = np.where(x < 75, 1.0, 1.0 + 0.02 * (x - 75))  # rises from step 75
    result = detect_phases(x, entropy, rise, rise, window=1)
    assert result.confidence == "low" and "disagree" in result.notes[0]
    assert result.signals["execution_entropy"].step == 20
    assert result.signals["accuracy"].step == 75
    assert result.step == 75  # median of 20, 75, 75


def test_one_sided_evidence_is_medium_and_missing_curves_are_named():
    x = np.arange(1, 41)
    accuracy = np.where(x < 20, 0.3, 0.3 + 0.01 * (x - 20))
    result = detect_phases(x, None, None, accuracy, window=1)
    assert result.step == 20 and result.confidence == "medium"
    assert result.notes[0] == "only one side of the transition is visible"
    assert "not logged: execution entropy, semantic entropy" in result.notes
    assert result.to_dict()["signals"]["accuracy"]["step"] == 20
