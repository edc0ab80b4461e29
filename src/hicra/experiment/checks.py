"""What a reader must know before trusting an experiment's numbers, found in its runs: accuracy
that stops early, runs without hierarchy metrics, a placebo that does not match the planning
ratio, plug-in-only semantic entropy, unequal gram occurrences, a horizon cut short, and paired
runs that never diverged."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import zip_longest
from typing import Any

import numpy as np

from hicra.experiment.controls import CONTROL_CREDITS, run_long_ratio
from hicra.experiment.metrics import LABELS, METRICS
from hicra.experiment.runs import ExperimentRun
from hicra.experiment.status import State
from hicra.run_folder import Metric
from hicra.train.placebo import TOLERANCE


def run_checks(runs: list[ExperimentRun]) -> list[str]:
    """What a reader must know before trusting the numbers: accuracy that stops early (NaN tail),
    runs that logged no hierarchy metrics, and placebo sets that do not match the real grams."""
    notes = []
    for item in runs:
        if item.last_step < item.logged_step:
            notes.append(
                f"{item.label}: hicra/accuracy is not a number after step {item.last_step} "
                f"(logged to step {item.logged_step}): every comparison with it stops there"
            )
        if item.run.config.get("hierarchy_metrics") is False:
            notes.append(
                f"{item.label}: hierarchy_metrics is false, so its entropies and semantic "
                "entropy were not logged (shown as –); accuracy and the planning ratio were"
            )
        if item.run.config.get("credit") in CONTROL_CREDITS:
            notes.extend(placebo_check(item))
        if (
            item.run.series(Metric.SEMANTIC_ENTROPY) is not None
            and item.run.series(Metric.SEMANTIC_ENTROPY_MM) is None
        ):
            notes.append(
                f"{item.label}: only the plug-in semantic entropy was logged, which rises with "
                "the number of gram occurrences: left out of the semantic entropy readout"
            )
    return notes


def occurrence_note(arms: dict[str, dict[str, Any]]) -> str | None:
    """Semantic entropy read at unequal numbers of gram occurrences is not comparable as it is:
    said when the arms' mean occurrences per step differ by more than half."""
    counts = {
        arm: m["gram_occurrences_end"]["mean"]
        for arm, m in arms.items()
        if m["gram_occurrences_end"]["mean"] is not None
    }
    if len(counts) < 2 or min(counts.values()) <= 0:
        return None
    if max(counts.values()) <= 1.5 * min(counts.values()):
        return None
    listed = ", ".join(f"{arm} {value:.0f}" for arm, value in counts.items())
    return (
        f"gram occurrences per step differ between arms ({listed}): semantic entropy, even "
        "bias-corrected, still rises with them, so compare it with care"
    )


def placebo_check(item: ExperimentRun) -> list[str]:
    """A control run's marked-token share against the real planning ratio over the run
    (`controls.run_long_ratio`): beyond the 10% tolerance, or no token marked, is flagged."""
    found = run_long_ratio(item)
    if found is None:
        return [f"{item.label}: control run without hicra/placebo_ratio: its match is unchecked"]
    marked, real, how = found
    if real == 0:
        return []
    if marked == 0:
        return [f"{item.label}: the placebo marked no token (no set was drawn): it ran as GRPO"]
    off = marked / real - 1
    if abs(off) <= TOLERANCE:
        return []
    return [
        f"{item.label}: the placebo marked {marked:.3f} of the tokens against a planning ratio of "
        f"{real:.3f} over the run, {how} ({off:+.0%}, beyond the {TOLERANCE:.0%} match): it "
        f"upweights {'fewer' if off < 0 else 'more'} tokens than HICRA does"
    ]


def horizon_note(runs: list[ExperimentRun], horizon: int, what: str) -> str | None:
    """Which run sets the horizon, when it cuts others short."""
    longest = max(i.last_step for i in runs)
    if horizon >= longest:
        return None
    cutting = [i.label for i in runs if i.last_step == horizon]
    return (
        f"{what} use steps 1-{horizon}: {', '.join(cutting)} reached only step {horizon} "
        f"(others up to {longest})"
    )


def _marked_planning(item: ExperimentRun) -> bool:
    planning = item.run.series(Metric.PLANNING_RATIO)
    return planning is not None and bool(np.nanmax(planning) > 0)


def no_planning_notes(runs: Sequence[ExperimentRun]) -> list[str]:
    """Runs that never marked a planning token: hicra and the controls then ran as GRPO. When no
    run of the experiment marked one, one loud note says the comparison is empty."""
    from hicra.train.outcome import USES_PLANNING

    logged = [item for item in runs if item.run.series(Metric.PLANNING_RATIO) is not None]
    if logged and not any(_marked_planning(item) for item in logged):
        return [
            "NO RUN MARKED A SINGLE PLANNING TOKEN: hicra and the controls ran as GRPO, so every "
            "comparison between them is empty (check strategic_grams against what the model says)"
        ]
    return [
        f"{item.label}: no planning token in any step: credit {item.run.config.get('credit')!r} "
        "ran as GRPO"
        for item in logged
        if item.run.config.get("credit") in USES_PLANNING and not _marked_planning(item)
    ]


def heldout_gone_notes(runs: Sequence[ExperimentRun], has_eval: bool) -> list[str]:
    """Finished runs whose held-out results are missing: with `eval:`, no `eval/results.json`
    score; trained with `eval_benchmarks`, no `eval/accuracy` line in metrics.jsonl. Each shrinks
    the paired seeds of every held-out contrast with its arm, so each is named."""
    notes = []
    for item in runs:
        if item.state is not State.FINISHED:
            continue
        if has_eval and item.heldout is None:
            notes.append(
                f"{item.label}: finished, but its held-out evaluation (eval/results.json) is gone "
                "or unreadable: its seed drops out of every held-out contrast"
            )
        if item.run.config.get("eval_benchmarks") and item.run.series(Metric.EVAL_ACCURACY) is None:
            notes.append(
                f"{item.label}: trained with eval_benchmarks, but metrics.jsonl holds no "
                "eval/accuracy line: its seed drops out of the in-training held-out contrasts"
            )
    return notes


def missing_primary_notes(
    runs: Sequence[ExperimentRun], primary: str, horizon: int, threshold: float
) -> list[str]:
    """Finished runs that lack the primary metric, named as such (not blamed on anything else)."""
    read = METRICS[primary].read
    return [
        f"{item.label}: the primary metric ({LABELS[primary]}) is missing from this run"
        for item in runs
        if item.state is State.FINISHED and read(item, horizon, threshold) is None
    ]


def _logged_completions(item: ExperimentRun) -> Iterator[tuple[Any, Any]] | None:
    path = item.run.rollouts_path
    if path is None:
        return None

    def rows() -> Iterator[tuple[Any, Any]]:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    yield (None, line)  # unreadable: compared as its text
                    continue
                yield (row.get("step"), row.get("completion")) if isinstance(row, dict) else row

    return rows()


def _same_rollouts(arm: ExperimentRun, baseline: ExperimentRun) -> bool:
    """Whether two runs logged the same completions at the same steps, line by line (read only
    up to the first difference)."""
    ours, theirs = _logged_completions(arm), _logged_completions(baseline)
    if ours is None or theirs is None:
        return False
    seen = False
    for mine, other in zip_longest(ours, theirs):
        if mine != other:
            return False
        seen = True
    return seen


def undiverged_seed_notes(
    runs: Sequence[ExperimentRun], contrasts: Sequence[tuple[str, str]]
) -> list[str]:
    """Paired seeds whose arm logged exactly the baseline's rollouts: the arm's change never
    altered a sampled token there (a positive control's inverted groups that carried no learning
    signal, a control too weak to move the sampler), so those seeds' differences are 0 by
    construction, not a measured null; the contrast rests on its other seeds."""
    by_key = {(item.arm, item.seed): item for item in runs if item.state is State.FINISHED}
    notes = []
    for arm, baseline in contrasts:
        paired = sorted(seed for a, seed in by_key if a == arm and (baseline, seed) in by_key)
        same = [s for s in paired if _same_rollouts(by_key[(arm, s)], by_key[(baseline, s)])]
        if same:
            seeds = ", ".join(map(str, same))
            notes.append(
                f"{arm} vs {baseline}: seed{'s' if len(same) > 1 else ''} {seeds} logged exactly "
                f"{baseline}'s rollouts (every completion in rollouts.jsonl, {len(same)} of "
                f"{len(paired)} paired seeds): the arm's change never altered a sampled token "
                f"there, so {'those differences are' if len(same) > 1 else 'its difference is'} "
                "0 by construction, not a measured null"
            )
    return notes


def dose_notes(runs: Sequence[ExperimentRun]) -> list[str]:
    """Per arm under `reward_corruption` (the graded positive control): by seed, how many of the
    inverted groups carried a learning signal (`hicra/inverted_groups_with_signal`): an inverted
    group whose completions are all right or all wrong keeps advantages of 0, so the delivered
    dose can be far below the scheduled share."""
    by_arm: dict[str, list[str]] = {}
    for item in sorted(runs, key=lambda i: (i.arm, i.seed)):
        fraction = item.run.config.get("reward_corruption")
        if not fraction:
            continue
        groups = item.run.series(Metric.INVERTED_GROUPS)
        signal = item.run.series(Metric.INVERTED_WITH_SIGNAL)
        dose = (
            "not logged"
            if groups is None or signal is None
            else f"{int(np.nansum(signal))} of {int(np.nansum(groups))}"
        )
        by_arm.setdefault(f"{item.arm} (reward_corruption {fraction:g})", []).append(
            f"seed {item.seed}: {dose}"
        )
    notes = []
    for arm, seeds in by_arm.items():
        if all(seed.endswith(": not logged") for seed in seeds):
            notes.append(
                f"{arm}: its runs did not log the dose (hicra/inverted_groups_with_signal: they "
                "predate it), so how many inverted groups carried a learning signal is unknown"
            )
            continue
        notes.append(
            f"{arm}: inverted groups that carried a learning signal, {'; '.join(seeds)} (an "
            "inverted group whose completions were all right or all wrong changes no advantage)"
        )
    return notes
