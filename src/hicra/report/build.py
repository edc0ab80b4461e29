"""Run folders in, report folder out: load, detect phases, plot, render, write.

Files are written to a temporary name and renamed, so a browser that reloads report.html while a
report of a live run is being rebuilt never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hicra.errors import HicraError
from hicra.output_folder import make_output_folder
from hicra.report import DEFAULT_MAX_ROLLOUTS, DEFAULT_SMOOTH, DEFAULT_TOP_GRAMS, curves, plots
from hicra.report.dumps import DumpOptions, find_dump
from hicra.report.html import render_html
from hicra.report.rollouts import scan_rollouts
from hicra.report.runs import Run, load_run, unique_labels
from hicra.report.summary import RunReport, gram_tables, phases_of, run_stats, to_json


@dataclass
class ReportResult:
    """What was written, and what the user should know about the runs."""

    output: Path
    files: dict[str, Path]
    reports: list[RunReport]
    warnings: list[str]


def odd_window(smooth: int) -> int:
    """The moving-average width actually used: `smooth` rounded up to an odd number (>= 1)."""
    if smooth < 1:
        raise HicraError(f"--smooth must be at least 1 (1: no smoothing), got {smooth}")
    return 2 * (smooth // 2) + 1


def _run_warnings(run: Run) -> list[str]:
    warnings = list(run.warnings)
    if run.is_dump:  # the dump's own notes say what it lacks
        return warnings
    missing = curves.missing_hierarchy_metrics(run)
    if len(missing) == len(curves.HIERARCHY_KEYS):
        warnings.append(
            f"{run.path / 'metrics.jsonl'}: no hierarchy metrics ({', '.join(missing)}): the run "
            "was trained with them off (e.g. plain GRPO with --no-hierarchy-metrics), so the "
            "entropy, semantic-entropy and planning panels are empty and phases are read from "
            "accuracy alone"
        )
    elif missing:
        warnings.append(f"{run.path / 'metrics.jsonl'}: not logged: {', '.join(missing)}")
    if curves.accuracy(run) is not None and run.series(curves.ACCURACY) is None:
        warnings.append(
            f"{run.path / 'metrics.jsonl'}: no hicra/accuracy; accuracy panels show reward"
        )
    if run.rollouts_path is None:
        warnings.append(f"{run.path}: no rollouts.jsonl; no rollouts to browse")
    return warnings


def analyse(
    run: Run, index: int, window: int, max_rollouts: int, top_grams: int = DEFAULT_TOP_GRAMS
) -> RunReport:
    """Phases, stats, grams per phase and a rollout sample for one loaded run."""
    phase = phases_of(run, window)
    scan = run.rollouts
    if scan is None and run.rollouts_path:
        scan = scan_rollouts(run.rollouts_path, max_rollouts)
    warnings = _run_warnings(run) + (scan.warnings if scan else [])
    return RunReport(
        index=index,
        run=run,
        phase=phase,
        rollouts=scan,
        stats=run_stats(run, window),
        grams=gram_tables(scan, phase, top_grams),
        warnings=warnings,
    )


def _write(path: Path, data: bytes) -> None:
    """Replace `path` atomically; an unwritable folder is one clear error, not a traceback."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise HicraError(f"cannot write {path}: {err.strerror or err}") from None


def load_source(
    path: str | Path,
    label: str | None,
    max_rollouts: int,
    dump_options: DumpOptions | None = None,
) -> Run:
    """A hicra run folder, or a rollout dump of another trainer read as one (report/dumps.py)."""
    dump = find_dump(path)
    if dump is None:
        return load_run(path, label)
    from hicra.report.convert import load_dump  # tokenizers and torch: only for a dump

    return load_dump(dump, dump_options or DumpOptions(), max_rollouts, label)


def build_report(
    run_dirs: list[str | Path],
    output: str | Path,
    smooth: int = DEFAULT_SMOOTH,
    max_rollouts: int = DEFAULT_MAX_ROLLOUTS,
    labels: list[str] | None = None,
    dump_options: DumpOptions | None = None,
) -> ReportResult:
    """Write report.html, dynamics.png, hierarchy.png (heldout.png when a run evaluated held-out
    sets or logged group pass@k) and report.json for the runs to `output`.

    Each path is a hicra run folder or a rollout dump (a verl rollout_data_dir, a JSONL or
    Parquet file of rollouts), read with `dump_options`. Everything is read and checked before
    the output folder is made: bad input writes nothing."""
    from hicra import __version__

    if not run_dirs:
        raise HicraError("give at least one run folder")
    if labels and len(labels) != len(run_dirs):
        raise HicraError(f"got {len(labels)} --label values for {len(run_dirs)} run folders")
    if max_rollouts < 0:
        raise HicraError(f"--max-rollouts must be 0 or more, got {max_rollouts}")
    window = odd_window(smooth)
    runs = [
        load_source(d, labels[i] if labels else None, max_rollouts, dump_options)
        for i, d in enumerate(run_dirs)
    ]
    if not labels:
        unique_labels(runs)
    reports = [analyse(run, i, window, max_rollouts) for i, run in enumerate(runs)]
    phases = [r.phase for r in reports]
    figures = {
        "dynamics": plots.dynamics_png(runs, phases, window),
        "hierarchy": plots.hierarchy_png(runs, phases, window),
    }
    if plots.has_heldout(runs):
        figures["heldout"] = plots.heldout_png(runs, phases, window)
    warnings = [w for r in reports for w in r.warnings]
    output = make_output_folder(output, "report folder")
    files = {name: output / f"{name}.png" for name in figures}
    for name, png in figures.items():
        _write(files[name], png)
    page = render_html(reports, figures, window, __version__, warnings)
    files["html"] = output / "report.html"
    _write(files["html"], page.encode("utf-8"))
    summary = {
        "hicra_version": __version__,
        "smooth": window,
        "runs": [to_json(r) for r in reports],
    }
    files["json"] = output / "report.json"
    _write(files["json"], (json.dumps(summary, indent=1, ensure_ascii=False) + "\n").encode())
    return ReportResult(output, files, reports, warnings)
