"""The pre-registration: what an experiment will be judged on, recorded before any run starts.

Looking at results and then choosing the primary metric, the contrasts or how many seeds to run
raises the false-positive rate (adding seeds one at a time from 3 to 8 and stopping at the first
"higher": 14.6% at a nominal 5%; the best of 3 metrics: 12%). The first `hicra experiment run` in a
folder writes DIR/preregistration.json (primary metric, contrasts, alpha, planned seeds, arms,
baseline) and never changes it. Changes are allowed later, but the analysis compares what it used
with this record, and every verdict says what changed after the plan, and which seeds are beyond
it. A folder whose runs started before any record (an older version) is not pre-registered, and
the analysis says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hicra.experiment import SEED_PREFIX
from hicra.experiment.loading import contrasts_for
from hicra.experiment.metrics import LABELS, primary_metric
from hicra.experiment.stats import ALPHA
from hicra.experiment.status import discover

if TYPE_CHECKING:
    from hicra.experiment.spec import ExperimentSpec

PREREGISTRATION_FILE = "preregistration.json"


def plan_of(spec: ExperimentSpec, folder: Path) -> dict[str, Any]:
    """What the experiment file says it will be judged on, resolved as the analysis resolves it."""
    arms = list(spec.arms)
    credits = {arm: _credit(spec.run_config(folder, arm, spec.seeds[0])) for arm in arms}
    contrasts = spec.contrasts or [list(p) for p in contrasts_for(arms, spec.baseline, credits)]
    primary = primary_metric({"primary_metric": spec.primary_metric, "eval": spec.eval})
    return {
        "primary_metric": primary,
        "contrasts": [list(pair) for pair in contrasts],
        "alpha": ALPHA,
        "seeds": list(spec.seeds),
        "arms": arms,
        "baseline": spec.baseline,
    }


def _credit(config: dict[str, Any]) -> Any:
    """An arm's credit rule: its config's, else `hicra train`'s default (what its runs record)."""
    if "credit" in config:
        return config["credit"]
    from hicra.train.config import HICRAConfig

    return next(f.default for f in dataclasses.fields(HICRAConfig) if f.name == "credit")


def preregister(spec: ExperimentSpec, folder: Path) -> Path | None:
    """Write DIR/preregistration.json at the first run (no run folder yet); never overwrite it.
    Returns the file when it was written now."""
    path = folder / PREREGISTRATION_FILE
    if path.exists() or (folder.is_dir() and discover(folder)):
        return None
    from hicra import __version__

    record = {
        **plan_of(spec, folder),
        "recorded_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hicra_version": __version__,
    }
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    staging.replace(path)
    return path


def load_preregistration(folder: Path) -> dict[str, Any] | None:
    """The folder's pre-registration, None when it has none (or it cannot be read)."""
    try:
        record = json.loads((folder / PREREGISTRATION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def deviations(
    record: dict[str, Any],
    primary: str,
    contrasts: list[tuple[str, str]],
    alpha: float,
    seeds: list[int],
) -> list[str]:
    """What the analysis uses that the pre-registration did not plan, one phrase each."""
    changed = []
    planned = record.get("primary_metric")
    if planned != primary:
        was = LABELS.get(str(planned), str(planned))
        changed.append(f"primary metric {LABELS.get(primary, primary)} (planned: {was})")
    planned_pairs = {tuple(pair) for pair in record.get("contrasts") or []}
    used = set(contrasts)
    if used != planned_pairs:
        added = sorted(used - planned_pairs)
        dropped = sorted(planned_pairs - used)
        parts = []
        if added:
            parts.append("added " + ", ".join(f"{a} vs {b}" for a, b in added))
        if dropped:
            parts.append("dropped " + ", ".join(f"{a} vs {b}" for a, b in dropped))
        changed.append(f"contrasts {'; '.join(parts)}")
    if record.get("alpha") is not None and float(record["alpha"]) != alpha:
        changed.append(f"alpha {alpha} (planned: {record['alpha']})")
    plan = [int(s) for s in record.get("seeds") or []]
    extra = [s for s in seeds if s not in plan]
    if extra:
        listed = ", ".join(f"{SEED_PREFIX}{s}" for s in extra)
        changed.append(f"{listed} beyond the {len(plan)} planned seeds")
    return changed
