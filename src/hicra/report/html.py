"""The self-contained HTML report: one file, no network, model output always escaped.

Plots are inline base64 PNGs, the stylesheet and the filter script are inlined from package assets,
and every piece of model text goes through `html.escape`: a completion that contains `<script>`
shows as text. Rollout cards are rendered here, complete, so the page reads without JavaScript;
the inline script only shows and hides cards for the filters.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from html import escape
from importlib import resources

from hicra.report import phases as phase_method
from hicra.report.rollouts import MAX_DISPLAY_CHARS, Rollout
from hicra.report.summary import RunReport
from hicra.report.thumbnails import ThumbnailSet, rollout_images_html


def _asset(name: str) -> str:
    return resources.files("hicra.report").joinpath(f"assets/{name}").read_text("utf-8")


# C0 and C1 control characters (but tab, newline, carriage return) and NUL: raw model output may
# hold them, and they make an HTML page invalid (NUL) or invisible; they are shown as U+FFFD.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _e(value: object) -> str:
    """Text for the page: HTML-escaped, control characters replaced by U+FFFD."""
    return escape(_CONTROL.sub("\ufffd", str(value)), quote=True)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _accuracy_cell(stats: dict, key: str) -> str:
    """The value, and what it rests on: the steps and the number of completions scored."""
    value = stats.get(key)
    if value is None:
        return "–"
    shown = f"{value:.3g}" if stats.get("accuracy_from_reward") else _pct(value)
    notes = []
    if key == "final_accuracy" and stats.get("final_accuracy_steps"):
        first, last = stats["final_accuracy_steps"]
        notes.append(f"steps {first}–{last}" if first != last else f"step {last}")
    if (n := stats.get(f"{key}_completions")) is not None:
        notes.append(f"n={n:,}")
    if notes:
        shown += f" <span class='muted'>({', '.join(notes)})</span>"
    return shown


def _eval_cell(stats: dict) -> str:
    """The last held-out accuracy (mean over benchmarks), its step, and each benchmark's value."""
    value = stats.get("final_eval_accuracy")
    if value is None:
        return "–"
    notes = [f"step {stats['final_eval_step']}"] if "final_eval_step" in stats else []
    held = stats.get("heldout", {})
    if len(held) > 1:
        notes += [f"{_e(b)} {_pct(h['final_accuracy'])}" for b, h in held.items()]
    elif held:
        notes.append(_e(next(iter(held))))
    return _pct(value) + (f" <span class='muted'>({', '.join(notes)})</span>" if notes else "")


def _source_note(source: dict) -> str:
    """For a rollout dump: what it is and how it was read (fields, tokenizer, entropies)."""
    if not source:
        return ""
    entropies = source.get("token_entropies") or "none"
    parts = [
        f"{source['kind']}, {source['rollouts']:,} rollouts",
        f"accuracy: {source['accuracy']}",
        f"tokenizer: {source['tokenizer']}, grams: {source['grams']}",
        f"token entropies: {entropies}",
    ]
    return "<br><span class='muted source'>" + "<br>".join(_e(p) for p in parts) + "</span>"


def summary_table(reports: list[RunReport]) -> str:
    rows = []
    for r in reports:
        s = r.stats
        reward_note = (
            f" <span class='muted'>({'score' if r.run.is_dump else 'reward'})</span>"
            if s.get("accuracy_from_reward")
            else ""
        )
        ratio = (
            f"{_pct(s['planning_ratio_first'])} → {_pct(s['planning_ratio_last'])}"
            if "planning_ratio_first" in s
            else "not logged"
        )
        phase = r.phase
        phase_cell = f"step {phase.step}" if phase.step is not None else "none found"
        why = f" title='{_e(phase.notes[0])}'" if phase.notes else ""
        phase_cell += (
            f" <span class='confidence-{_e(phase.confidence)}'{why}>({_e(phase.confidence)})</span>"
        )
        scan = r.rollouts
        rollouts = "none" if scan is None else f"{len(scan.samples)} of {scan.total}"
        eval_cell = _eval_cell(s)
        rows.append(
            "<tr>"
            f"<td><b>{_e(r.run.label)}</b><br><span class='muted'>{_e(r.run.path)}</span>"
            f"{_source_note(r.run.source)}</td>"
            f"<td class='num'>{s['points']} <span class='muted'>({s['first_step']}–{s['last_step']})</span></td>"
            f"<td class='num'>{_accuracy_cell(s, 'final_accuracy')}{reward_note}</td>"
            f"<td class='num'>{_accuracy_cell(s, 'mean_accuracy')}</td>"
            f"<td class='num'>{eval_cell}</td>"
            f"<td>{phase_cell}</td>"
            f"<td class='num'>{ratio}</td>"
            f"<td class='num'>{rollouts}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>run</th><th>logged steps (range)</th><th>final accuracy (last 10% of steps)</th>"
        "<th>mean accuracy (whole run)</th>"
        "<th>held-out accuracy (last evaluation)</th><th>phase two starts</th>"
        "<th>planning-token ratio (first → last)</th><th>rollouts shown</th></tr>"
    )
    return f"<table class='summary' id='summary-table'>{head}{''.join(rows)}</table>"


def phases_section(reports: list[RunReport], window: int) -> str:
    method = (
        f"Each curve is smoothed (centered moving average over {window} logged points), then a "
        "continuous two-segment line is fitted by least squares at every possible breakpoint. "
        "Execution-token entropy marks the end of phase one where it stops falling (slope at least "
        "halved); semantic entropy (relative to its first value) and accuracy mark the start of "
        "phase two where they start rising. A breakpoint counts only if it removes at least "
        f"{phase_method.MIN_IMPROVEMENT:.0%} of a straight line's squared error on the raw curve "
        f"and the change is at least {phase_method.MIN_SIGNAL_TO_NOISE:g}× the curve's noise. The "
        "detected step is the median of the curves that count. Confidence is high when execution "
        f"entropy and a rising curve agree within {phase_method.AGREE_FRACTION:.0%} of the run "
        f"with at least {phase_method.MIN_POINTS_HIGH} points, low with fewer than "
        f"{phase_method.MIN_POINTS} points, no signal, or curves more than "
        f"{phase_method.DISAGREE_FRACTION:.0%} of the run apart."
    )
    parts = [f"<p class='muted'>{_e(method)}</p>"]
    for r in reports:
        notes = "".join(f"<li>{_e(n)}</li>" for n in r.phase.notes)
        signal = r.run.config.get("success_signal")  # which reward says "correct"
        success = f"<p class='muted'>correct (accuracy): {_e(str(signal))}</p>" if signal else ""
        parts.append(
            f"<h3>{_e(r.run.label)}: {_e(r.phase.describe())}</h3>{success}"
            f"<ul class='phase-notes' data-run='{r.index}'>{notes}</ul>"
        )
    return "".join(parts)


def grams_section(reports: list[RunReport]) -> str:
    parts = []
    for r in reports:
        if not r.grams:
            parts.append(f"<h3>{_e(r.run.label)}</h3><p class='muted'>no planning spans logged</p>")
            continue
        tables = []
        for t in r.grams:
            rows = "".join(
                f"<tr><td>{_e(g)}</td><td class='num'>{c}</td><td class='num'>{_pct(c / t.total)}</td></tr>"
                for g, c in t.counts
            )
            tables.append(
                f"<table class='gram-table'><caption>{_e(t.title)}</caption>"
                f"<tr><th>strategic gram</th><th>count</th><th>share</th></tr>{rows}</table>"
            )
        parts.append(f"<h3>{_e(r.run.label)}</h3><div class='grams'>{''.join(tables)}</div>")
    return "".join(parts)


def completion_html(rollout: Rollout) -> str:
    """The completion with merged planning spans as <mark class="plan"> (all text escaped)."""
    out = []
    for segment in rollout.segments(MAX_DISPLAY_CHARS):
        if segment.grams:
            out.append(
                f"<mark class='plan' title='{_e(', '.join(segment.grams))}'>{_e(segment.text)}</mark>"
            )
        else:
            out.append(_e(segment.text))
    cut = len(rollout.completion) - MAX_DISPLAY_CHARS
    if cut > 0:
        out.append(f"<span class='muted'> … ({cut:,} more characters not shown)</span>")
    return "".join(out)


def rollout_card(report: RunReport, rollout: Rollout, thumbs: ThumbnailSet | None = None) -> str:
    bits = [f"<b>{_e(report.run.label)}</b>", f"step {rollout.step}"]
    if rollout.group is not None:
        bits.append(f"group {_e(rollout.group)}")
    if rollout.reward is not None:
        bits.append(f"reward {_num(rollout.reward)}")
    if rollout.advantage is not None:
        bits.append(f"advantage {_num(rollout.advantage)}")
    bits.append(f"<span class='badge {rollout.outcome}'>{rollout.outcome}</span>")
    if rollout.length is not None:
        bits.append(f"{rollout.length} tokens")
    if rollout.planning_tokens is not None:
        bits.append(f"{rollout.planning_tokens} planning")
    answer = f"<p class='muted'>gold answer: {_e(rollout.answer)}</p>" if rollout.answer else ""
    return (
        f"<article class='rollout' data-run='{report.index}' data-step='{rollout.step}' "
        f"data-outcome='{rollout.outcome}' data-phase='{report.phase_of(rollout.step)}'>"
        f"<header>{' · '.join(bits)}</header>"
        f"{rollout_images_html(thumbs or ThumbnailSet(), report.run, rollout)}"
        f"<details><summary>prompt</summary><pre class='prompt'>{_e(rollout.prompt)}</pre>{answer}</details>"
        f"<pre class='completion'>{completion_html(rollout)}</pre></article>"
    )


def browser_section(reports: list[RunReport]) -> str:
    thumbs = ThumbnailSet()  # vision-language rollouts: each prompt image inlined once
    cards = [rollout_card(r, x, thumbs) for r in reports if r.rollouts for x in r.rollouts.samples]
    if not cards:
        return "<p class='muted'>No rollouts.jsonl in these runs, or it is empty.</p>"
    steps = sorted({x.step for r in reports if r.rollouts for x in r.rollouts.samples})
    run_options = "".join(f"<option value='{r.index}'>{_e(r.run.label)}</option>" for r in reports)
    step_options = "".join(f"<option value='{s}'>{s}</option>" for s in steps)
    outcomes = {x.outcome for r in reports if r.rollouts for x in r.rollouts.samples}
    buttons = "".join(
        f"<button type='button' data-outcome='{o}' aria-pressed='{'true' if o == 'all' else 'false'}'>"
        f"{o}</button>"
        for o in ("all", "correct", "incorrect", "unknown")
        if o == "all" or o in outcomes
    )
    run_filter = (
        f"<label>run <select id='filter-run'><option value='all'>all</option>{run_options}</select></label>"
        if len(reports) > 1
        else ""
    )
    phase_filter = (
        "<label>phase <select id='filter-phase'><option value='all'>all</option>"
        "<option value='1'>phase one</option><option value='2'>phase two</option></select></label>"
        if any(r.phase.step is not None for r in reports)
        else ""
    )
    return (
        f"{thumbs.style()}<div class='filters'>"
        f"{run_filter}"
        f"<label>step <select id='filter-step'><option value='all'>all</option>{step_options}</select></label>"
        f"{phase_filter}"
        f"<span class='outcome-filter' role='group' aria-label='outcome'>{buttons}</span>"
        "<span id='rollout-count' class='muted'></span></div>"
        "<p class='muted'>Highlighted: <mark class='plan'>planning tokens</mark> (spans of strategic "
        "grams, hover for the gram). Everything else is execution.</p>"
        f"<div id='rollout-list'>{''.join(cards)}</div>"
        "<p id='no-rollouts' class='muted' hidden>No sampled rollout matches these filters.</p>"
    )


def render_html(
    reports: list[RunReport],
    figures: dict[str, bytes],
    window: int,
    version: str,
    warnings: list[str],
) -> str:
    """The whole page as one string."""
    labels = ", ".join(r.run.label for r in reports)
    images = "".join(
        f"<figure><img id='plot-{_e(name)}' alt='{_e(caption)}' "
        f"src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"
        f"<figcaption class='muted'>{_e(caption)}</figcaption></figure>"
        for name, (caption, png) in _captioned(figures).items()
    )
    warning_list = (
        "<ul class='warnings'>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>"
        if warnings
        else ""
    )
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>hicra report: {_e(labels)}</title><style>{_asset('report.css')}</style></head>"
        "<body><main>"
        f"<h1>hicra report</h1><p class='meta'>{_e(labels)} · generated {_e(now)} by hicra {_e(version)}"
        f" · smoothing: moving average over {window} logged points</p>"
        "<nav><a href='#runs'>runs</a><a href='#phases'>phases</a><a href='#plots'>plots</a>"
        "<a href='#grams'>strategic grams</a><a href='#rollouts'>rollouts</a></nav>"
        f"<section id='runs'><h2>Runs</h2>{summary_table(reports)}{warning_list}</section>"
        f"<section id='phases'><h2>Phases</h2>{phases_section(reports, window)}</section>"
        f"<section id='plots'><h2>Training dynamics</h2>{images}</section>"
        "<section id='grams'><h2>Most frequent strategic grams per phase</h2>"
        f"<p class='muted'>Counted over all logged rollouts of each phase.</p>{grams_section(reports)}</section>"
        f"<section id='rollouts'><h2>Sampled rollouts</h2>{browser_section(reports)}</section>"
        f"</main><script>{_asset('report.js')}</script></body></html>\n"
    )


_CAPTIONS = {
    "dynamics": "The paper's view: execution-token entropy, semantic entropy relative to its "
    "first value, accuracy and mean response length against step.",
    "hierarchy": "Planning-token entropy, planning-token ratio, reward, fork-token overlap, "
    "semantic entropy (Miller-Madow corrected, solid; plug-in, dashed) and the strategic-gram "
    "occurrences N and distinct grams K it rests on (log scale): compare entropies at similar N.",
    "heldout": "Held-out accuracy and pass@k of the policy while training (markers: the "
    "evaluated steps), and group pass@k of the training batches: does exploration widen or narrow?",
}


def _captioned(figures: dict[str, bytes]) -> dict[str, tuple[str, bytes]]:
    return {name: (_CAPTIONS.get(name, name), png) for name, png in figures.items()}
