"""`hicra report DIR` on an experiment folder: each arm's mean curve with a 95% band over seeds,
the analysis tables and verdicts, and a link to every run's own report.

The band at each step is the t-interval of the mean over the seeds that logged that step
(`hicra.experiment.stats.t_interval`, the method of the tables too); each run's curve is smoothed
first (centered moving average, as in the single-run report), so the band shows seed-to-seed
spread, not step-to-step noise. Semantic entropy is the bias-corrected (Miller-Madow) estimate when
the runs logged it, as in the tables. Written to DIR/report/: experiment.png, report.html,
results.json/.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from hicra.errors import HicraError
from hicra.experiment import EXPERIMENT_FILE, MARKDOWN_FILE, RESULTS_FILE
from hicra.experiment.analysis import analyze
from hicra.experiment.loading import Loaded, load_experiment
from hicra.experiment.markdown import markdown
from hicra.experiment.metrics import LABELS, METRICS
from hicra.experiment.stats import t_interval
from hicra.experiment.status import discover
from hicra.output_folder import make_output_folder
from hicra.report.phases import smooth
from hicra.report.plots import COLORS
from hicra.run_folder import METRICS_FILE, Metric

# (metric, title, the values it can take): bands are cut to that range (a t-band over 2 seeds is
# 12.7 standard errors wide and would otherwise reach far below 0 or above 1)
PANELS = (
    (Metric.ACCURACY, "training accuracy (share exactly right)", (0.0, 1.0)),
    (Metric.EXECUTION_ENTROPY, "execution-token entropy", (0.0, np.inf)),
    (Metric.SEMANTIC_ENTROPY_MM, "semantic entropy, bias-corrected (nats)", (0.0, np.inf)),
    (Metric.PLANNING_RATIO, "planning-token ratio", (0.0, 1.0)),
)


def is_experiment_folder(folder: Path) -> bool:
    """An experiment folder: it has experiment.yaml, or ARM/seed-S run folders and no run of its
    own."""
    if (folder / EXPERIMENT_FILE).is_file():
        return True
    return not (folder / METRICS_FILE).is_file() and folder.is_dir() and bool(discover(folder))


@dataclass(frozen=True)
class Band:
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


def mean_band(curves: Sequence[dict[int, float]]) -> Band | None:
    """The mean over seeds of curves (step -> value) with a 95% t-band (`t_interval`), at every
    step some curve has a finite value; a step with one seed gets no band. None: no curves."""
    if not curves:
        return None
    steps = np.array(sorted({s for c in curves for s in c}), dtype=np.int64)
    table = np.array([[c.get(int(s), np.nan) for s in steps] for c in curves], dtype=float)
    n = np.sum(np.isfinite(table), axis=0)
    keep = n > 0
    steps, table, n = steps[keep], table[:, keep], n[keep]
    mean, low, high = np.empty(steps.size), np.empty(steps.size), np.empty(steps.size)
    for count in np.unique(n):  # steps logged by the same number of seeds: one t-interval call
        columns = np.flatnonzero(n == count)
        values = np.stack([column[np.isfinite(column)] for column in table[:, columns].T])
        mean[columns], low[columns], high[columns] = t_interval(values)
    single = n < 2  # one seed: no band
    low[single], high[single] = mean[single], mean[single]
    return Band(steps, mean, low, high, len(curves))


def arm_band(loaded: Loaded, arm: str, key: str, window: int) -> Band | None:
    """The mean over seeds of the arm's smoothed curves of `key`, with a 95% t-band."""
    curves = []
    for item in loaded.runs:
        if item.arm != arm or (values := item.run.series(key)) is None:
            continue
        curves.append(dict(zip(item.run.steps.tolist(), smooth(values, window), strict=True)))
    return mean_band(curves)


def panel_key(loaded: Loaded, key: str) -> str:
    """The plug-in semantic entropy for runs that did not log the bias-corrected one."""
    if key == Metric.SEMANTIC_ENTROPY_MM and not any(
        item.run.series(key) is not None for item in loaded.runs
    ):
        return Metric.SEMANTIC_ENTROPY
    return key


def experiment_png(loaded: Loaded, window: int) -> bytes:
    figure = Figure(figsize=(11, 7.5), dpi=110)
    axes = figure.subplots(2, 2)
    for ax, (key, title, (floor, ceiling)) in zip(axes.flat, PANELS, strict=True):
        drawn = False
        if panel_key(loaded, key) != key:
            key, title = panel_key(loaded, key), "semantic entropy, plug-in (nats)"
        for index, arm in enumerate(loaded.arms):
            band = arm_band(loaded, arm, key, window)
            if band is None:
                continue
            color = COLORS[index % len(COLORS)]
            low, high = np.clip(band.low, floor, ceiling), np.clip(band.high, floor, ceiling)
            ax.plot(band.steps, band.mean, color=color, label=f"{arm} (n={band.seeds})")
            ax.fill_between(band.steps, low, high, color=color, alpha=0.2, linewidth=0)
            drawn = True
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    figure.suptitle(
        "Mean over seeds, 95% band (t-interval over seeds, cut to the values a metric can take)",
        fontsize=12,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _cell(stats: dict[str, Any], digits: int) -> str:
    if stats["mean"] is None:
        return "–"
    text = f"{stats['mean']:.{digits}f}"
    if stats["ci_low"] is not None:
        text += f" <span class='muted'>[{stats['ci_low']:.{digits}f}, {stats['ci_high']:.{digits}f}]</span>"
    return f"{text} <span class='muted'>n={stats['n']}</span>"


def render(loaded: Loaded, results: dict[str, Any], png: bytes, run_links: dict[str, str]) -> str:
    from hicra import __version__
    from hicra.report.html import _asset

    head = "".join(f"<th>{_e(LABELS[m])}</th>" for m in LABELS)
    rows = "".join(
        f"<tr><td><b>{_e(arm)}</b></td>"
        + "".join(f"<td class='num'>{_cell(stats[m], METRICS[m].digits)}</td>" for m in LABELS)
        + "</tr>"
        for arm, stats in results["arms"].items()
    )
    verdicts = "".join(f"<li>{_e(v)}</li>" for v in results["verdicts"])
    missing = "".join(f"<li>{_e(m)}</li>" for m in results["missing"])
    notes = "".join(f"<li>{_e(m)}</li>" for m in results["notes"])
    links = "".join(
        f"<li><a href='{_e(href)}'>{_e(label)}</a></li>" for label, href in run_links.items()
    )
    image = base64.b64encode(png).decode("ascii")
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>hicra experiment: {_e(loaded.folder.name)}</title>"
        f"<style>{_asset('report.css')}</style></head><body><main>"
        f"<h1>hicra experiment: {_e(loaded.folder.name)}</h1>"
        f"<p class='meta'>{_e(loaded.folder)} · baseline {_e(results['baseline'])} · steps "
        f"1-{results['horizon']} (every run has reached them) · hicra {__version__} · {when}</p>"
        f"<h2>Verdicts</h2><ul id='verdicts'>{verdicts}</ul>"
        f"<h2>Arms</h2><table id='arms'><tr><th>arm</th>{head}</tr>{rows}</table>"
        "<p class='muted'>Mean over seeds, [95% t-interval over seeds], n seeds. Accuracy: the "
        "share of completions exactly right; final = mean of the last 10% of the steps. Primary "
        f"metric: {_e(LABELS[results['primary_metric']])} (judged at alpha "
        f"{results['alpha']}); the other compared metrics are secondary, Holm-adjusted.</p>"
        f"<h2>Curves</h2><figure><img alt='mean curves with 95% bands' "
        f"src='data:image/png;base64,{image}'></figure>"
        + (f"<h2>Missing or unfinished</h2><ul>{missing}</ul>" if missing else "")
        + (f"<h2>Notes</h2><ul id='notes'>{notes}</ul>" if notes else "")
        + f"<h2>Runs</h2><ul id='runs'>{links}</ul>"
        "</main></body></html>\n"
    )


def build_experiment_report(folder: Path, output: Path, smooth_window: int) -> dict[str, Any]:
    """Analyse the experiment, draw it, and write each run's own report; returns the results."""
    from hicra.report.build import build_report, odd_window

    loaded = load_experiment(folder)
    results = analyze(loaded)
    window = odd_window(smooth_window)
    make_output_folder(output, "report folder")
    links = {}
    for item in loaded.runs:
        run_report = item.run.path / "report"
        build_report([item.run.path], run_report, smooth_window)
        page = (run_report / "report.html").resolve()
        links[item.label] = os.path.relpath(page, output.resolve())
    png = experiment_png(loaded, window)
    files = {
        "experiment.png": png,
        "report.html": render(loaded, results, png, links).encode("utf-8"),
        RESULTS_FILE: (json.dumps(results, indent=1) + "\n").encode(),
        MARKDOWN_FILE: markdown(results).encode("utf-8"),
    }
    for name, data in files.items():
        try:
            (output / name).write_bytes(data)
        except OSError as err:
            raise HicraError(f"cannot write {output / name}: {err.strerror}") from None
    return results
