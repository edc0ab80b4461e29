"""HICRA's settings in a verl config: keys under `algorithm`, read and checked at start-up.

verl accepts new keys with Hydra's `+` (`+algorithm.hicra_alpha=0.2`) and ignores keys it does not
know, so a typo or a bad value would otherwise pass silently or fail at the first step. Everything
here is checked when the HICRA trainer is built, before any worker, model or rollout starts.
**Decision**: the keys have the names of `hicra train`'s config fields, so one vocabulary serves
both engines. This module imports neither verl nor trl.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from hicra.advantages import Credit, get_credit
from hicra.errors import HicraError
from hicra.tagging import COUNTINGS

ESTIMATOR = "hicra"  # algorithm.adv_estimator
# What the plugin can hand a credit rule: verl stores per-token entropies in TransferQueue when it
# recomputes the old log-probs, and the driver holds every response of the step (whole groups).
SUPPORTED_NEEDS = frozenset({"entropies", "whole_groups"})


@dataclass(frozen=True)
class VerlHicraSettings:
    """The HICRA keys under `algorithm` in a verl config, with `hicra train`'s defaults."""

    credit: str = "hicra"
    hicra_alpha: float = 0.2
    strategic_grams: str = "paper"
    fork_quantile: float = 0.7
    gram_counting: str = "longest"
    hierarchy_metrics: bool = True
    # the run folder `hicra report` reads (None: trainer.default_local_dir/hicra)
    output_dir: str | None = None
    rollouts_per_step: int = 2  # prompt groups a step written to rollouts.jsonl (0: none)


SETTING_KEYS = tuple(f.name for f in fields(VerlHicraSettings))


def _key(name: str) -> str:
    return f"algorithm.{name}"


def _number_in_unit_interval(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise HicraError(f"{_key(name)} must be a number in [0, 1), got {value!r}")
    return float(value)


def _text(name: str, value: Any, choices: Iterable[str] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise HicraError(f"{_key(name)} must be a non-empty string, got {value!r}")
    if choices is not None and value not in choices:
        raise HicraError(f"{_key(name)} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _check_unknown_keys(algorithm: Mapping[str, Any], engine_keys: Iterable[str]) -> None:
    """A key that is neither verl's nor HICRA's but looks like HICRA's is a typo: say so."""
    known = set(engine_keys) | set(SETTING_KEYS)
    for key in algorithm:
        if key in known:
            continue
        close = difflib.get_close_matches(key, SETTING_KEYS, n=1, cutoff=0.75)
        if close or key.startswith("hicra"):
            hint = f"did you mean {_key(close[0])}? " if close else ""
            raise HicraError(
                f"unknown HICRA setting {_key(key)}: {hint}HICRA's settings are "
                + ", ".join(_key(k) for k in SETTING_KEYS)
            )


def check_needs(credit: Credit, *, entropies_available: bool) -> None:
    """Refuse, naming the credit and the need, a credit whose inputs this engine cannot provide."""
    for need in sorted(credit.needs):
        if need not in SUPPORTED_NEEDS:
            raise HicraError(
                f"{_key('credit')}={credit.name!r} needs {need!r}, which hicra's verl plugin does "
                f"not provide (it provides {', '.join(sorted(SUPPORTED_NEEDS))}); run this credit "
                "with `hicra train`, or choose another credit"
            )
        if need == "entropies" and not entropies_available:
            raise HicraError(
                f"{_key('credit')}={credit.name!r} needs the token entropies, which verl computes "
                "only when it recomputes the old log-probs; set "
                "algorithm.rollout_correction.bypass_mode=false or choose a credit without "
                "'entropies'"
            )


def read_settings(
    algorithm: Mapping[str, Any],
    *,
    engine_keys: Iterable[str] = (),
    entropies_available: bool = True,
) -> VerlHicraSettings:
    """Read and check the HICRA keys of a verl `algorithm` section; missing keys take defaults.

    `engine_keys` are verl's own algorithm keys (not typos); `entropies_available` says whether
    verl will store per-token entropies (it does unless rollout correction runs in bypass mode).
    """
    _check_unknown_keys(algorithm, engine_keys)
    defaults = VerlHicraSettings()
    raw = {name: algorithm.get(name, getattr(defaults, name)) for name in SETTING_KEYS}
    hierarchy_metrics = raw["hierarchy_metrics"]
    if not isinstance(hierarchy_metrics, bool):
        raise HicraError(
            f"{_key('hierarchy_metrics')} must be true or false, got {hierarchy_metrics!r}"
        )
    output_dir = raw["output_dir"]
    if output_dir is not None:
        output_dir = _text("output_dir", output_dir)
    rollouts_per_step = raw["rollouts_per_step"]
    if isinstance(rollouts_per_step, bool) or not isinstance(rollouts_per_step, int):
        raise HicraError(
            f"{_key('rollouts_per_step')} must be a whole number >= 0, got {rollouts_per_step!r}"
        )
    if rollouts_per_step < 0:
        raise HicraError(f"{_key('rollouts_per_step')} must be >= 0, got {rollouts_per_step}")
    settings = VerlHicraSettings(
        credit=_text("credit", raw["credit"]),
        hicra_alpha=_number_in_unit_interval("hicra_alpha", raw["hicra_alpha"]),
        strategic_grams=_text("strategic_grams", raw["strategic_grams"]),
        fork_quantile=_number_in_unit_interval("fork_quantile", raw["fork_quantile"]),
        gram_counting=_text("gram_counting", raw["gram_counting"], COUNTINGS),
        hierarchy_metrics=hierarchy_metrics,
        output_dir=output_dir,
        rollouts_per_step=rollouts_per_step,
    )
    try:
        credit = get_credit(settings.credit)
    except HicraError as err:
        raise HicraError(f"{_key('credit')}: {err}") from None
    check_needs(credit, entropies_available=entropies_available)
    return settings
