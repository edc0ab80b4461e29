"""An experiment folder as the analysis reads it: its runs (each ARM/seed-S run folder's metrics,
config, state and held-out score), arms, seeds, baseline, primary metric and contrasts.

Only what runs wrote is read, so a partial experiment loads: what is missing or unfinished is
listed. Runs that differ in anything but their arm's keys and the seed are refused, since an
analysis never mixes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hicra.experiment import EXPERIMENT_FILE, SEED_PREFIX
from hicra.experiment.checks import heldout_gone_notes, no_planning_notes, run_checks
from hicra.experiment.controls import CONTROL_CREDITS
from hicra.experiment.metrics import METRICS, primary_metric
from hicra.experiment.runs import ExperimentRun
from hicra.experiment.spec import DEFAULT_THRESHOLD, ExperimentError
from hicra.experiment.status import State, discover, eval_score, run_status
from hicra.report.runs import load_run
from hicra.train.layers import load_yaml

__all__ = ["Loaded", "arm_with_credit", "default_contrasts", "load_experiment"]

# Keys that differ between the runs of one arm by design (the pairing, paths, versions).
SEED_KEYS = {
    "seed",
    "data_seed",
    "output_dir",
    "logging_dir",
    "run_name",
    "hicra_version",
    "resume",
    "strategic_grams_resolved",
}
# Keys a run computes from others: they may differ between arms when one of their sources does.
DERIVED_KEYS = {"reward_weights": {"accuracy_weight", "format_weight"}}


@dataclass
class Loaded:
    """Everything found in an experiment folder."""

    folder: Path
    runs: list[ExperimentRun]
    arms: list[str]
    seeds: list[int]
    baseline: str
    threshold: float
    arm_keys: set[str] | None  # from experiment.yaml; None when the folder has none
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    primary: str = "mean_accuracy"
    contrasts: list[tuple[str, str]] = field(default_factory=list)
    has_eval: bool = False


def load_experiment(
    folder: str | Path, baseline: str | None = None, finished_only: bool = False
) -> Loaded:
    """The runs of an experiment folder (ARM/seed-S run folders), checked for consistency."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExperimentError(f"experiment folder not found: {folder}")
    saved = load_yaml(folder / EXPERIMENT_FILE) if (folder / EXPERIMENT_FILE).is_file() else {}
    found = discover(folder)
    if not found:
        raise ExperimentError(
            f"{folder}: no runs (expected ARM/{SEED_PREFIX}S/ run folders with metrics.jsonl)"
        )
    arms = list(saved.get("arms") or {}) or sorted({arm for arm, _, _ in found})
    seeds = list(saved.get("seeds") or []) or sorted({seed for _, seed, _ in found})
    has_eval = bool(saved.get("eval"))
    runs, missing, notes = [], [], []
    present = {(arm, seed) for arm, seed, _ in found}
    for arm in arms:
        for seed in seeds:
            if (arm, seed) not in present:
                missing.append(f"{arm}/{SEED_PREFIX}{seed}: not started")
    for arm, seed, path in found:
        label = f"{arm}/{SEED_PREFIX}{seed}"
        try:
            run = load_run(path, label)
        except Exception as err:  # a run that has not logged a step yet
            missing.append(f"{label}: no metrics yet ({err})")
            continue
        notes.extend(f"{label}: {warning}" for warning in run.warnings)
        state = run_status(arm, seed, path, run.config.get("max_steps")).state
        if state is not State.FINISHED:
            missing.append(f"{label}: {state.value} at step {int(run.steps[-1])}")
            if finished_only:
                continue
        score, problems = eval_score(path)
        if has_eval and score is None and state is State.FINISHED:
            results = path / "eval" / "results.json"
            why = "unreadable" if results.is_file() else "missing"
            missing.append(
                f"{label}: no held-out eval ({results} {why}): held-out accuracy leaves it out"
            )
        runs.append(ExperimentRun(arm, seed, run, state, score, problems))
    if not runs:
        raise ExperimentError(f"{folder}: no run has logged a step yet ({'; '.join(missing)})")
    chosen = baseline or saved.get("baseline") or ("grpo" if "grpo" in arms else arms[0])
    if chosen not in arms:
        raise ExperimentError(f"baseline {chosen!r} is not an arm ({', '.join(arms)})")
    threshold = (saved.get("analysis") or {}).get("threshold", DEFAULT_THRESHOLD)
    arm_keys = (
        {k for overrides in saved["arms"].values() for k in (overrides or {})}
        if saved.get("arms")
        else None
    )
    loaded = Loaded(folder, runs, arms, seeds, chosen, float(threshold), arm_keys, missing, notes)
    loaded.has_eval = has_eval
    loaded.primary = primary_metric(saved)
    if loaded.primary not in METRICS:
        raise ExperimentError(
            f"{folder / EXPERIMENT_FILE}: unknown primary_metric {loaded.primary!r}"
        )
    check_configs(loaded)
    saved_contrasts = saved.get("contrasts")
    loaded.contrasts = (
        [tuple(pair) for pair in saved_contrasts]
        if saved_contrasts and baseline is None
        else default_contrasts(loaded)
    )
    loaded.notes.extend(run_checks(loaded.runs))
    loaded.notes.extend(no_planning_notes(loaded.runs))
    loaded.notes.extend(heldout_gone_notes(loaded.runs, has_eval))
    return loaded


def check_configs(loaded: Loaded) -> None:
    """Runs may differ only in their arm's keys and the seed: anything else is named, as an error."""
    by_arm: dict[str, list[ExperimentRun]] = {}
    for item in loaded.runs:
        by_arm.setdefault(item.arm, []).append(item)
    reference: dict[str, dict[str, Any]] = {}
    for arm, items in by_arm.items():
        first = items[0]
        for other in items[1:]:
            key = _differing_key(first.run.config, other.run.config, SEED_KEYS)
            if key is not None:
                raise ExperimentError(
                    f"runs {first.label} and {other.label} of one arm differ in {key!r} "
                    f"({first.run.config.get(key)!r} vs {other.run.config.get(key)!r}): an "
                    "analysis never mixes them"
                )
        reference[arm] = first.run.config
    arms = list(reference)
    arm_keys = loaded.arm_keys or set()
    derived = {key for key, sources in DERIVED_KEYS.items() if sources & arm_keys}
    allowed = SEED_KEYS | arm_keys | derived
    for arm in arms[1:]:
        key = _differing_key(reference[arms[0]], reference[arm], allowed)
        if key is None:
            continue
        if loaded.arm_keys is None:  # no experiment.yaml: report what the arms differ in
            loaded.notes.append(f"arms {arms[0]} and {arm} differ in {key!r}")
            continue
        raise ExperimentError(
            f"arms {arms[0]} and {arm} differ in {key!r} ({reference[arms[0]].get(key)!r} vs "
            f"{reference[arm].get(key)!r}), which no arm sets: the runs do not belong together"
        )


def _differing_key(a: dict[str, Any], b: dict[str, Any], ignore: set[str]) -> str | None:
    for key in sorted(set(a) | set(b)):
        if key not in ignore and a.get(key) != b.get(key):
            return key
    return None


# --------------------------------------------------------------------------- roles and contrasts
def credit_arm(arms: list[str], credits: dict[str, Any], credit: str) -> str | None:
    """The arm named after a credit rule, else the one arm that uses it (None: none or many)."""
    if credit in arms:
        return credit
    using = sorted(arm for arm in arms if credits.get(arm) == credit)
    return using[0] if len(using) == 1 else None


def arm_credits(loaded: Loaded) -> dict[str, Any]:
    """Each arm's credit rule, as its runs were configured."""
    return {item.arm: item.run.config.get("credit") for item in loaded.runs}


def arm_with_credit(loaded: Loaded, credit: str) -> str | None:
    """The arm named after a credit rule, else the one arm whose runs use it (None: none or many)."""
    return credit_arm(loaded.arms, arm_credits(loaded), credit)


def contrasts_for(arms: list[str], baseline: str, credits: dict[str, Any]) -> list[tuple[str, str]]:
    """Every arm against the baseline, and hicra against each control arm (placebo, random
    tokens) when both exist: the default contrasts, at `run` (pre-registered) and at `analyze`."""
    pairs = [(arm, baseline) for arm in arms if arm != baseline]
    hicra = credit_arm(arms, credits, "hicra")
    controls = [a for a in arms if a in CONTROL_CREDITS or credits.get(a) in CONTROL_CREDITS]
    for control in controls:
        pair = (hicra, control)
        if hicra and control != hicra and pair not in pairs and pair[::-1] not in pairs:
            pairs.append(pair)
    return pairs


def default_contrasts(loaded: Loaded) -> list[tuple[str, str]]:
    """`contrasts_for` the loaded runs' arms and credits."""
    return contrasts_for(loaded.arms, loaded.baseline, arm_credits(loaded))
