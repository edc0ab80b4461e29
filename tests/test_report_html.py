"""Report contents from fixture runs: plots, the page's structure, rollout sampling and spans."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from hicra.report import plots
from hicra.report.build import build_report
from hicra.report.html import completion_html
from hicra.report.phases import PhaseResult
from hicra.report.rollouts import (
    MAX_DISPLAY_CHARS,
    Rollout,
    Segment,
    merge_spans,
    scan_rollouts,
    segments,
    select_lines,
)
from hicra.report.runs import load_run
from tests.report_fixtures import NASTY, PHASE_ONE_PHRASES, PHASE_TWO_PHRASES, make_run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    runs = [
        make_run(base / "hicra", change=25, seed=1),
        make_run(base / "grpo", credit="grpo", change=35, seed=2),
    ]
    return runs, build_report(runs, base / "out", max_rollouts=30)


def test_merge_spans_joins_overlapping_and_nested_grams():
    spans = [
        [0, 3, "but"],
        [0, 8, "but wait"],
        [4, 8, "wait"],
        [10, 16, "let me"],
        [10, 23, "let me verify"],
    ]
    assert merge_spans(spans, 40) == [
        (0, 8, ("but", "but wait", "wait")),
        (10, 23, ("let me", "let me verify")),
    ]
    assert merge_spans([[0, 2, "a"], [2, 4, "b"]], 10) == [
        (0, 2, ("a",)),
        (2, 4, ("b",)),
    ]  # touching
    bad = [
        [5, 3, "x"],
        [-4, 2, "clipped"],
        [8, 99, "cut"],
        ["1", 2],
        [1],
        "x",
        [True, 3],
        [3, 3, "e"],
    ]
    assert merge_spans(bad, 10) == [(0, 2, ("clipped",)), (8, 10, ("cut",))]
    assert merge_spans(None, 10) == []


def test_segments_and_completion_html_escape_everything():
    text = "<b>Wait</b>, let me & check"
    merged = merge_spans([[3, 7, "wait"], [13, 19, "let me"]], len(text))
    assert segments(text, merged) == [
        Segment("<b>"),
        Segment("Wait", ("wait",)),
        Segment("</b>, "),
        Segment("let me", ("let me",)),
        Segment(" & check"),
    ]
    rollout = Rollout(1, 1, 0, "", text, "", None, None, None, None, None, merged)
    assert completion_html(rollout) == (
        "&lt;b&gt;<mark class='plan' title='wait'>Wait</mark>&lt;/b&gt;, "
        "<mark class='plan' title='let me'>let me</mark> &amp; check"
    )
    long = Rollout(1, 1, 0, "", "x" * (MAX_DISPLAY_CHARS + 5), "", None, None, None, None, None, [])
    assert completion_html(long).endswith(" … (5 more characters not shown)</span>")


def test_select_lines_spreads_over_steps_and_mixes_outcomes():
    index = {
        step: [(step * 10 + i, "correct" if i < 3 else "incorrect") for i in range(5)]
        for step in range(1, 11)
    }
    chosen = select_lines(index, 20)
    assert len(chosen) == 20
    for step in range(1, 11):  # two per step: one correct, then one incorrect
        assert sorted(line for line in chosen if line // 10 == step) == [step * 10, step * 10 + 3]
    few = select_lines(index, 4)  # fewer than the steps: evenly spaced steps, first and last kept
    assert sorted(line // 10 for line in few) == [1, 4, 7, 10]
    assert select_lines(index, 0) == set() and select_lines({}, 5) == set()
    assert len(select_lines(index, 1000)) == 50


def test_scan_counts_every_rollout_and_reads_back_the_sample(tmp_path):
    run = make_run(tmp_path / "r", steps=30, change=15, rollout_every=5, truncated_tail=True)
    (run / "rollouts.jsonl").open("a").write("")
    scan = scan_rollouts(run / "rollouts.jsonl", max_samples=6)
    assert scan.total == 7 * 4 and scan.with_spans == 28 and scan.warnings == []
    assert sorted(scan.per_step) == [1, 5, 10, 15, 20, 25, 30]
    assert scan.outcomes["unknown"] == 7
    assert len(scan.samples) == 6 and len({s.step for s in scan.samples}) == 6
    before, after = scan.gram_counts(last=14), scan.gram_counts(first=15)
    assert before["let me verify"] > 0 and after["let me verify"] == 0
    assert after["hold on"] > 0 and before["hold on"] == 0
    nasty = next(
        s for s in scan_rollouts(run / "rollouts.jsonl", 100).samples if s.completion == NASTY
    )
    assert nasty.step == 1 and nasty.outcome == "correct"
    assert nasty.spans == [
        (NASTY.index("Let me verify"), NASTY.index(" </pre>"), ("let me", "let me verify"))
    ]


def test_report_files_and_summary(two_runs):
    runs, result = two_runs
    assert sorted(p.name for p in result.output.iterdir()) == [
        "dynamics.png",
        "hierarchy.png",
        "report.html",
        "report.json",
    ]
    data = json.loads(result.files["json"].read_text())
    assert data["smooth"] == 5
    first, second = data["runs"]
    assert (first["label"], second["label"]) == ("hicra α=0.2", "grpo")
    assert (first["phase"]["step"], second["phase"]["step"]) == (25, 35)
    assert first["points"] == 60 and first["final_eval_accuracy"] is not None
    rows = [json.loads(line) for line in (runs[0] / "rollouts.jsonl").open()]
    outcomes = {"correct": 0, "incorrect": 0, "unknown": 0}
    for row in rows:
        outcomes[{True: "correct", False: "incorrect", None: "unknown"}[row["correct"]]] += 1
    assert first["rollouts"] == {"total": 52, "shown": 30, "outcomes": outcomes}
    one, two = first["grams"]
    assert one["title"] == "phase one (steps 1-20)" and two["title"] == "phase two (steps 25-60)"
    assert {g for g, _ in one["top"]} >= {"let me verify", "need to", "we can use"}
    assert {g for g, _ in two["top"]} >= {
        "hold on",
        "let me rethink this",
        "but wait",
        "another approach",
    }
    assert "hold on" not in {g for g, _ in one["top"]}


def test_html_is_self_contained_and_escapes_model_output(two_runs):
    _, result = two_runs
    page = result.files["html"].read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*>", page) == ["<script>"]  # inline only, no src
    assert re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page) is None
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert page.count("src='data:image/png;base64,") == 2
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert "window.__pwned = 1</script>" not in page
    assert "&lt;i&gt;(html in prompt)&lt;/i&gt;" in page
    assert page.count("<article class='rollout'") == 60  # 30 per run (--max-rollouts 30)
    assert "<mark class='plan' title='but, but wait, wait'>But wait</mark>" in page
    for phrase in (*PHASE_ONE_PHRASES, *PHASE_TWO_PHRASES):
        assert phrase.split()[0] in page


def test_dynamics_figure_overlays_both_runs(two_runs):
    _, result = two_runs
    image = imread(io.BytesIO(result.files["dynamics"].read_bytes()))
    assert image.shape[:2] == (800, 1100)
    pixels = (image[..., :3] * 255).round().reshape(-1, 3)
    for color in plots.COLORS[:2]:  # both runs' solid lines are drawn
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(axis=1) < 10).sum() > 500, color


def test_panels_mark_the_detected_step_only_where_the_run_has_data(tmp_path):
    with_data = load_run(make_run(tmp_path / "a", steps=30, change=12))
    without = load_run(make_run(tmp_path / "b", steps=30, hierarchy_metrics=False, credit="grpo"))
    phases = [PhaseResult(12, "high"), PhaseResult(20, "medium")]
    ax = Figure().subplots()
    plots.draw_panel(ax, plots.DYNAMICS[0], [with_data, without], phases, 5)
    vertical = [line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1]
    assert vertical == [12]  # run b logged no execution entropy: no line, no marker
    assert len(ax.lines) == 3  # raw and smoothed curve of run a, its phase marker
    ax = Figure().subplots()  # a low-confidence detection is dotted, not dashed
    plots.draw_panel(ax, plots.DYNAMICS[0], [with_data] * 2, [phases[0], PhaseResult(20, "low")], 5)
    vertical = [(line.get_xdata()[0], line.get_linestyle()) for line in ax.lines[2::3]]
    assert vertical == [(12, "--"), (20, ":")]
    ax = Figure().subplots()
    plots.draw_panel(ax, plots.HIERARCHY[1], [without], phases[1:], 5)
    assert [t.get_text() for t in ax.texts] == ["not logged"] and len(ax.lines) == 0
    ax = Figure().subplots()
    plots.draw_panel(ax, plots.DYNAMICS[2], [without], phases[1:], 5)
    assert "reward (no hicra/accuracy logged)" in ax.get_title()
    assert len(ax.lines) == 4  # raw, smoothed, validation markers, phase marker


def test_a_log_panel_without_a_positive_value_draws_without_a_warning(tmp_path):
    """A run whose completions never held a gram logs 0 occurrences: the log-scaled gram panel
    stays linear instead of matplotlib's 'Data has no positive values' warning."""
    import warnings

    run = make_run(tmp_path / "run", steps=12)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        if "hicra/accuracy" in row:  # a training line: no gram in its completions
            row["hicra/gram_occurrences"] = row["hicra/distinct_grams"] = 0.0
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        build_report([run], tmp_path / "out")
    assert (tmp_path / "out" / "hierarchy.png").is_file()
