"""Reading run folders: live and killed runs, labels, and clear messages for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hicra.cli import main
from hicra.report import curves
from hicra.report.runs import RunError, load_run, run_label, unique_labels
from tests.report_fixtures import make_run


def write_metrics(folder, *lines: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(lines), encoding="utf-8")
    return folder


def test_lines_of_a_step_merge_and_a_truncated_tail_is_ignored(tmp_path):
    folder = write_metrics(
        tmp_path / "run",
        '{"step": 2, "reward": 0.5, "hicra/accuracy": null}\n',
        '{"step": 1, "reward": 0.25, "note": "text is not a metric"}\n',
        '{"step": 2, "eval/accuracy": 0.75, "reward": NaN}\n',  # the eval line of step 2
        '{"step": 3, "reward": 0.',  # killed mid-write
    )
    run = load_run(folder)
    assert run.steps.tolist() == [1, 2]
    assert run.metrics["reward"].tolist() == [0.25, 0.5]  # NaN never overwrites a value
    assert np.isnan(run.metrics["eval/accuracy"][0]) and run.metrics["eval/accuracy"][1] == 0.75
    assert run.series("hicra/accuracy") is None and run.series("note") is None
    assert run.warnings == []
    assert run.label == "run" and run.rollouts_path is None


def test_bad_lines_in_the_middle_are_skipped_with_a_warning(tmp_path):
    folder = write_metrics(
        tmp_path / "run",
        '{"step": 1, "reward": 0.1}\n',
        "{oops\n",
        '{"reward": 0.3}\n',
        '{"step": 4, "reward": 0.4}\n',
    )
    run = load_run(folder)
    assert run.steps.tolist() == [1, 4]
    assert any(
        "metrics.jsonl: skipped unreadable lines: 1 invalid JSON (line 2)" in w
        for w in run.warnings
    )
    assert any("1 lines without a numeric 'step' (line 3)" in w for w in run.warnings)


def test_labels_come_from_the_config(tmp_path):
    assert run_label(tmp_path / "a", {"credit": "hicra", "hicra_alpha": 0.2}) == "hicra α=0.2"
    assert run_label(tmp_path / "a", {"credit": "grpo", "hicra_alpha": 0.2}) == "grpo"
    assert run_label(tmp_path / "runs" / "b7", {}) == "b7"
    runs = [
        load_run(make_run(tmp_path / "x1", steps=12)),
        load_run(make_run(tmp_path / "x2", steps=12)),
        load_run(make_run(tmp_path / "g", credit="grpo", steps=12)),
    ]
    unique_labels(runs)
    assert [r.label for r in runs] == ["hicra α=0.2 (x1)", "hicra α=0.2 (x2)", "grpo"]
    (tmp_path / "g" / "config.yaml").write_text("credit: [unclosed\n")
    run = load_run(tmp_path / "g")
    assert run.label == "g" and "config.yaml: unreadable" in run.warnings[0]


def test_semantic_entropy_ratio_and_accuracy_fallback(tmp_path):
    folder = write_metrics(
        tmp_path / "run",
        '{"step": 1, "reward": 0.2, "hicra/semantic_entropy": 0}\n',
        '{"step": 2, "reward": 0.4, "hicra/semantic_entropy": 2.0}\n',
        '{"step": 3, "reward": 0.6, "hicra/semantic_entropy": 3.0}\n',
    )
    run = load_run(folder)
    ratio = curves.semantic_entropy_ratio(run)
    assert (
        ratio.values.tolist() == [0, 1, 1.5]
        and ratio.note == "relative to its first non-zero value"
    )
    acc = curves.accuracy(run)
    assert acc.values.tolist() == [0.2, 0.4, 0.6] and acc.note.startswith("reward")
    assert curves.missing_hierarchy_metrics(run) == [
        "hicra/execution_entropy",
        "hicra/planning_entropy",
        "hicra/planning_ratio",
    ]


def test_missing_folder_and_files_say_what_is_wrong(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope"), "-o", str(tmp_path / "out")]) == 2
    assert f"run folder not found: {tmp_path / 'nope'}" in capsys.readouterr().err
    (tmp_path / "plain").mkdir()
    assert main(["report", str(tmp_path / "plain")]) == 2
    err = capsys.readouterr().err
    assert "plain: neither a hicra run (no metrics.jsonl) nor a rollout dump (no STEP.jsonl" in err
    assert "Traceback" not in err
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RunError, match="neither a run folder of hicra train nor a rollout file"):
        load_run(tmp_path / "file.txt")


def test_empty_metrics_is_an_error(tmp_path, capsys):
    write_metrics(tmp_path / "starting", "")
    assert main(["report", str(tmp_path / "starting")]) == 2
    err = capsys.readouterr().err
    assert (
        "metrics.jsonl: no metric lines with a step yet (0 lines read; is the run still starting?)"
        in err
    )
    write_metrics(tmp_path / "torn", '{"step": 1, "rew')  # only a half-written first line
    assert main(["report", str(tmp_path / "torn")]) == 2
    assert "no metric lines with a step yet (1 lines read" in capsys.readouterr().err


def test_cli_argument_errors(tmp_path, capsys):
    a, b = make_run(tmp_path / "a", steps=12), make_run(tmp_path / "b", steps=12)
    assert main(["report", str(a), str(b)]) == 2
    assert "give --output DIR when reporting on several runs" in capsys.readouterr().err
    assert main(["report", str(a), "--smooth", "0"]) == 2
    assert "--smooth must be at least 1" in capsys.readouterr().err
    assert main(["report", str(a), str(b), "-o", str(tmp_path / "o"), "--label", "x"]) == 2
    assert "got 1 --label values for 2 run folders" in capsys.readouterr().err
    (tmp_path / "o2").write_text("")
    assert main(["report", str(a), "-o", str(tmp_path / "o2")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_grpo_run_without_hierarchy_metrics_still_reports(tmp_path, capsys):
    run = make_run(tmp_path / "grpo", credit="grpo", hierarchy_metrics=False, change=30)
    assert main(["report", str(run)]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "no hierarchy metrics" in captured.err
    assert "--no-hierarchy-metrics" in captured.err
    assert "no hicra/accuracy; accuracy panels show reward" in captured.err
    assert "no rollout has 'planning_spans'; nothing to highlight" in captured.err
    data = json.loads((run / "report" / "report.json").read_text())
    (entry,) = data["runs"]
    assert entry["accuracy_source"] == "reward" and "planning_ratio_first" not in entry
    assert entry["phase"]["signals"]["accuracy"]["accepted"]
    assert abs(entry["phase"]["step"] - 30) <= 3 and entry["phase"]["confidence"] == "medium"
    html = (run / "report" / "report.html").read_text()
    assert "no hierarchy metrics" in html and "not logged" in html


def test_a_live_run_reports_what_is_there(tmp_path, capsys):
    run = make_run(tmp_path / "live", steps=40, change=20, truncated_tail=True)
    assert main(["report", str(run), "--smooth", "3"]) == 0
    out = capsys.readouterr().out
    assert "40 logged steps (1-40)" in out and "report.html" in out
    data = json.loads((run / "report" / "report.json").read_text())
    assert data["smooth"] == 3 and data["runs"][0]["last_step"] == 40
    assert data["runs"][0]["rollouts"]["total"] == 9 * 4  # steps 1, 5, ..., 40; torn line ignored
    assert data["runs"][0]["warnings"] == []
    # The run goes on: five more steps are appended, and the report follows (40 steps and 4
    # validation lines before: the torn line is line 45).
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('2, "x": 1}\n')  # the torn line ends up invalid: skipped, and said so
        for step in range(41, 46):
            handle.write(json.dumps({"step": step, "reward": 0.5, "hicra/accuracy": 0.5}) + "\n")
    assert main(["report", str(run)]) == 0
    assert "skipped unreadable lines: 1 invalid JSON (line 45)" in capsys.readouterr().err
    data = json.loads((run / "report" / "report.json").read_text())
    assert data["runs"][0]["last_step"] == 45 and data["runs"][0]["final_accuracy"] == 0.5


def test_summary_accuracy_is_a_window_mean_with_its_completions(tmp_path):
    """One prompt group a step swings between 0 and 1: the headline is the mean over the last 10%
    of steps and over the run, with the completions behind each, never the last or best step."""
    run = tmp_path / "swing"
    run.mkdir()
    rows = [
        {"step": s, "reward": 1.0, "hicra/accuracy": 1.0 if s % 2 else 0.0, "hicra/completions": 8}
        for s in range(1, 21)
    ]
    rows[-1]["hicra/accuracy"] = 1.0  # the last step alone would say 100%
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["report", str(run)]) == 0
    entry = json.loads((run / "report" / "report.json").read_text())["runs"][0]
    assert entry["final_accuracy"] == pytest.approx((1.0 + 1.0) / 2)  # steps 19 and 20
    assert entry["final_accuracy_steps"] == [19, 20]
    assert entry["final_accuracy_completions"] == 16
    assert entry["mean_accuracy"] == pytest.approx(11 / 20)
    assert entry["mean_accuracy_completions"] == 160
    assert "best_accuracy" not in entry
    html = (run / "report" / "report.html").read_text()
    assert "55.0% <span class='muted'>(n=160)</span>" in html
    assert "(steps 19–20, n=16)" in html
