"""The experiment file: a base training config, arms that override it, paired seeds, an eval.

    base: configs/my-run.yaml            # or a mapping with the keys of a `hicra train` config
    arms:                                # arm name -> overrides of base
      grpo: {credit: grpo}
      hicra: {credit: hicra}
    seeds: [1, 2, 3, 4]                  # paired: seed S of every arm: same data order and sampling
    baseline: grpo                       # default: the first arm
    eval:                                # optional: `hicra eval` on each run's final model
      heldout: {dataset: rg:chain_sum, dataset_kwargs: {...}, size: 500, seed: 10007}
      # or file: heldout.jsonl, or benchmarks: [gsm8k, math500]
      samples: 1
      max_new_tokens: 64
    analysis: {threshold: 0.5}           # optional: "steps to reach" this training accuracy
    primary_metric: mean_accuracy        # optional (default: heldout_accuracy with an eval)
    contrasts: [[hicra, grpo], [hicra, placebo]]  # optional (default: every arm vs baseline,
                                         # and hicra vs placebo when both arms exist)
    output_dir: runs/my-experiment       # optional (default: runs/<file name>)

Every arm x seed becomes a `hicra train` config: base, then the arm's overrides, then `seed` and
`data_seed` (the pairing) and `output_dir: DIR/ARM/seed-S`. All of them are resolved (and so
validated) before anything runs, and so are the eval settings (benchmark names, every row of an
eval file): errors name the file and the arm or key, before hours of training. The eval settings
have their own fingerprint, apart from the training settings': changing them later re-runs only
the evaluations.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hicra.errors import HicraError
from hicra.experiment import EXPERIMENT_FILE, SEED_PREFIX
from hicra.train.layers import load_yaml

TOP_KEYS = (
    "base",
    "arms",
    "seeds",
    "baseline",
    "eval",
    "analysis",
    "primary_metric",
    "contrasts",
    "output_dir",
)
TRAINING_KEYS = ("base", "arms", "baseline")  # a folder's runs were trained from these
EVAL_KEYS = ("heldout", "file", "benchmarks", "samples", "max_new_tokens", "temperature", "limit")
HELDOUT_KEYS = ("dataset", "dataset_kwargs", "size", "seed")
SET_BY_HARNESS = ("seed", "data_seed", "output_dir", "resume")
ARM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ARM_RULE = (
    "must start with an ASCII letter or digit, then only ASCII letters, digits, '.', '_' or '-', "
    "at most 64 characters (it names a folder, on every file system)"
)
# in-training held-out settings: arms that differ in them are measured on different problem sets
# or by different scores, so held-out metrics would compare unlike things
HELDOUT_TRAIN_KEYS = (
    "eval_benchmarks",
    "eval_limit",
    "eval_samples",
    "eval_temperature",
    "eval_max_new_tokens",
)
CONTROL_CREDITS = ("placebo", "random_tokens")
SEED_RANGE = (0, 2**32 - 1)  # what numpy and torch take as a seed
DEFAULT_THRESHOLD = 0.5


class ExperimentError(HicraError):
    """An experiment file or folder cannot be used; the message names the file, arm or key."""


@dataclass
class ExperimentSpec:
    """A resolved experiment: what every run is, and what to evaluate."""

    source: str
    base: dict[str, Any]
    arms: dict[str, dict[str, Any]]
    seeds: list[int]
    baseline: str
    eval: dict[str, Any] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    output_dir: str = ""
    primary_metric: str | None = None
    contrasts: list[list[str]] | None = None

    def run_dir(self, folder: Path, arm: str, seed: int) -> Path:
        return folder / arm / f"{SEED_PREFIX}{seed}"

    def run_config(self, folder: Path, arm: str, seed: int) -> dict[str, Any]:
        """The `hicra train` config of one arm x seed."""
        config = copy.deepcopy(self.base)
        config.update(copy.deepcopy(self.arms[arm]))
        config.update(seed=seed, data_seed=seed, output_dir=str(self.run_dir(folder, arm, seed)))
        return config

    def arm_keys(self) -> set[str]:
        """Keys that some arm sets: the only keys in which runs of different arms may differ."""
        return {key for overrides in self.arms.values() for key in overrides}

    def identity(self) -> dict[str, Any]:
        """What makes two experiment files the same trained experiment (seeds may grow; the eval
        and analysis settings may change: they re-run only evaluations or the analysis)."""
        return {"base": self.base, "arms": self.arms, "baseline": self.baseline}

    def to_dict(self) -> dict[str, Any]:
        out = {**self.identity(), "eval": self.eval, "seeds": self.seeds}
        out["analysis"] = {"threshold": self.threshold}
        if self.primary_metric:
            out["primary_metric"] = self.primary_metric
        if self.contrasts:
            out["contrasts"] = self.contrasts
        out["fingerprints"] = {"training": self.fingerprint(), "eval": self.eval_fingerprint()}
        return {**out, "source": self.source}

    def fingerprint(self) -> str:
        """The training settings' fingerprint."""
        return _digest(self.identity())

    def eval_fingerprint(self) -> str:
        """The eval settings' fingerprint: a run evaluated under another one is evaluated again."""
        return _digest(self.eval)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _unknown(key: str, known: tuple[str, ...] | set[str], where: str) -> ExperimentError:
    close = difflib.get_close_matches(key, sorted(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ExperimentError(f"{where}: unknown key {key!r}{hint}")


def load_spec(
    path: str | Path, output_dir: str | None = None, check_flags: tuple[str, ...] = ()
) -> ExperimentSpec:
    """Read, check and resolve an experiment file (every arm x seed config is resolved).

    `check_flags` are added when resolving (`("--use-cpu",)` checks a GPU experiment on a CPU).
    """
    path = Path(path)
    data = load_yaml(path)
    where = str(path)
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown(key, TOP_KEYS, where)
    base = _base(data.get("base"), path)
    arms = _arms(data.get("arms"), where)
    seeds = _seeds(data.get("seeds"), where)
    baseline = data.get("baseline", next(iter(arms)))
    if baseline not in arms:
        raise ExperimentError(f"{where}: baseline {baseline!r} is not an arm ({', '.join(arms)})")
    evaluation = _eval(data.get("eval"), path)
    analysis = data.get("analysis") or {}
    if not isinstance(analysis, dict) or set(analysis) - {"threshold"}:
        raise ExperimentError(f"{where}: analysis takes one key, threshold (a training accuracy)")
    threshold = analysis.get("threshold", DEFAULT_THRESHOLD)
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ExperimentError(f"{where}: analysis.threshold must be in [0, 1], got {threshold!r}")
    primary = _primary_metric(data.get("primary_metric"), evaluation, where)
    contrasts = _contrasts(data.get("contrasts"), arms, where)
    folder = output_dir or data.get("output_dir") or f"runs/{path.stem}"
    spec = ExperimentSpec(
        where,
        base,
        arms,
        seeds,
        baseline,
        evaluation,
        float(threshold),
        str(folder),
        primary,
        contrasts,
    )
    _check_arms_differ(spec, where)
    _check_same_heldout(spec, where)
    _resolve_every_arm(spec, where, check_flags)
    _check_primary_is_logged(spec, where)
    return spec


def _base(value: Any, path: Path) -> dict[str, Any]:
    if isinstance(value, str):
        base_path = Path(value) if Path(value).is_absolute() else path.parent / value
        if not base_path.is_file():
            raise ExperimentError(f"{path}: base config file not found: {base_path}")
        return load_yaml(base_path)
    if isinstance(value, dict):
        return dict(value)
    if value is None:
        return {}
    raise ExperimentError(f"{path}: base must be a config file path or a mapping of config keys")


def _arms(value: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not value:
        raise ExperimentError(f"{where}: arms must be a mapping of arm name -> overrides of base")
    arms = {}
    for name, overrides in value.items():
        name = str(name)
        if not ARM_NAME.fullmatch(name):
            odd = next((c for c in name if not c.isascii()), None)
            which = f" (it holds the non-ASCII character {odd!r})" if odd else ""
            raise ExperimentError(f"{where}: arm name {name!r} {ARM_RULE}{which}")
        overrides = overrides or {}
        if not isinstance(overrides, dict):
            raise ExperimentError(f"{where}: arm {name!r}: overrides must be a mapping")
        for key in overrides:
            if key in SET_BY_HARNESS:
                raise ExperimentError(
                    f"{where}: arm {name!r}: {key!r} is set by the harness (seeds pair the arms)"
                )
        arms[name] = dict(overrides)
    return arms


def _seeds(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ExperimentError(f"{where}: seeds must be a non-empty list of whole numbers")
    seeds = []
    for seed in value:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ExperimentError(f"{where}: seeds must be whole numbers, got {seed!r}")
        if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
            raise ExperimentError(
                f"{where}: seed {seed} is out of range: seeds are whole numbers from "
                f"{SEED_RANGE[0]} to {SEED_RANGE[1]} (what numpy and torch accept)"
            )
        if seed in seeds:
            raise ExperimentError(f"{where}: seed {seed} is listed twice")
        seeds.append(seed)
    return seeds


def _eval(value: Any, path: Path) -> dict[str, Any]:
    where = f"{path}: eval"
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be a mapping")
    for key in value:
        if key not in EVAL_KEYS:
            raise _unknown(key, EVAL_KEYS, where)
    sources = [k for k in ("heldout", "file", "benchmarks") if value.get(k)]
    if len(sources) != 1:
        raise ExperimentError(f"{where}: give exactly one of heldout, file, benchmarks")
    evaluation = dict(value)
    if "file" in evaluation:
        file = Path(evaluation["file"])
        file = file if file.is_absolute() else path.parent / file
        if not file.is_file():
            raise ExperimentError(f"{where}.file not found: {file}")
        evaluation["file"] = str(file.resolve())
    if "heldout" in evaluation:
        heldout = evaluation["heldout"]
        if not isinstance(heldout, dict) or "dataset" not in heldout:
            raise ExperimentError(f"{where}.heldout needs dataset (and size, seed)")
        for key in heldout:
            if key not in HELDOUT_KEYS:
                raise _unknown(key, HELDOUT_KEYS, f"{where}.heldout")
    if "benchmarks" in evaluation and isinstance(evaluation["benchmarks"], str):
        evaluation["benchmarks"] = evaluation["benchmarks"].split(",")
    _check_eval_settings(evaluation, where)
    return evaluation


def _check_eval_settings(evaluation: dict[str, Any], where: str) -> None:
    """What `hicra eval` would refuse after training, refused now: unknown benchmark names, an
    eval file with a row it cannot use (no answer, say), bad sampling settings."""
    from hicra.eval.registry import file_benchmark, load_benchmark, locate, parse_benchmarks

    for key in ("samples", "max_new_tokens", "limit"):
        value = evaluation.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ExperimentError(
                f"{where}.{key} must be a whole number of at least 1, got {value!r}"
            )
    temperature = evaluation.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or temperature < 0
    ):
        raise ExperimentError(f"{where}.temperature must be a number >= 0, got {temperature!r}")
    try:
        if evaluation.get("file"):
            load_benchmark(file_benchmark(evaluation["file"]), limit=evaluation.get("limit"))
        if evaluation.get("benchmarks"):
            for bench in parse_benchmarks(evaluation["benchmarks"]):
                if locate(bench, None)[1] is not None:  # bundled: check its rows too
                    load_benchmark(bench, limit=evaluation.get("limit"))
    except HicraError as err:
        raise ExperimentError(f"{where}: {err}") from None


def _primary_metric(value: Any, evaluation: dict[str, Any], where: str) -> str | None:
    """`primary_metric:` must name a metric that arms are compared on (and can be measured)."""
    from hicra.experiment.metrics import METRICS

    if value is None:
        return None
    if value not in METRICS:
        raise _unknown(str(value), tuple(METRICS), f"{where}: primary_metric")
    if METRICS[value].needs_eval and not evaluation:
        raise ExperimentError(f"{where}: primary_metric {value!r} needs an eval: section")
    return str(value)


def _contrasts(value: Any, arms: dict[str, Any], where: str) -> list[list[str]] | None:
    """`contrasts:` a list of [arm, other arm] pairs (arm minus other), each pair once."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ExperimentError(f"{where}: contrasts must be a list of [arm, other arm] pairs")
    pairs: list[list[str]] = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ExperimentError(f"{where}: contrast {pair!r} is not a pair [arm, other arm]")
        a, b = (str(x) for x in pair)
        for arm in (a, b):
            if arm not in arms:
                raise ExperimentError(
                    f"{where}: contrast {pair!r}: {arm!r} is not an arm ({', '.join(arms)})"
                )
        if a == b:
            raise ExperimentError(f"{where}: contrast {pair!r} compares an arm with itself")
        if [a, b] in pairs or [b, a] in pairs:
            raise ExperimentError(f"{where}: contrast {pair!r} is listed twice")
        pairs.append([a, b])
    return pairs


def _check_same_heldout(spec: ExperimentSpec, where: str) -> None:
    """Arms must be held out on one problem set, scored one way: a difference in an in-training
    held-out setting between two arms is refused (set it in base)."""
    for key in HELDOUT_TRAIN_KEYS:
        values = {arm: {**spec.base, **overrides}.get(key) for arm, overrides in spec.arms.items()}
        first = next(iter(values))
        for arm, value in values.items():
            if value != values[first]:
                raise ExperimentError(
                    f"{where}: arms {first!r} and {arm!r} differ in {key} ({values[first]!r} vs "
                    f"{value!r}): their held-out metrics would compare different problem sets or "
                    f"scores; set {key} in base"
                )


def primary_removed_by(config: dict[str, Any], primary: str) -> str | None:
    """Why a run with this `hicra train` config would not log what `primary` is read from (None:
    it logs it). hicra/accuracy and hicra/planning_ratio are logged by every run."""
    heldout = primary in ("training_heldout_final", "training_heldout_auc")
    if heldout and not config.get("eval_benchmarks"):
        return "eval_benchmarks is not set: no held-out evaluation while training"
    lens = primary in ("execution_entropy_end", "semantic_entropy_end", "gram_occurrences_end")
    if lens and config.get("hierarchy_metrics") is False:
        return "hierarchy_metrics: false turns off the hierarchy metrics"
    if primary == "placebo_ratio_end" and config.get("credit", "hicra") not in CONTROL_CREDITS:
        return f"credit {config.get('credit', 'hicra')!r} is not a control (no hicra/placebo_ratio)"
    return None


def _check_primary_is_logged(spec: ExperimentSpec, where: str) -> None:
    """An arm whose settings remove the primary metric is refused before anything trains."""
    from hicra.experiment.metrics import primary_metric

    primary = primary_metric(spec.to_dict())
    for arm in spec.arms:
        why = primary_removed_by(spec.run_config(Path("."), arm, spec.seeds[0]), primary)
        if why:
            raise ExperimentError(
                f"{where}: arm {arm!r} cannot measure the primary metric {primary!r}: {why}"
            )


def _check_arms_differ(spec: ExperimentSpec, where: str) -> None:
    """Two arms with the same settings would compare a thing with itself."""
    seen: dict[str, str] = {}
    for name in spec.arms:
        settings = {**spec.base, **spec.arms[name]}
        key = json.dumps(settings, sort_keys=True, default=str)
        if key in seen:
            raise ExperimentError(
                f"{where}: arms {seen[key]!r} and {name!r} have identical settings"
            )
        seen[key] = name


def _resolve_every_arm(spec: ExperimentSpec, where: str, flags: tuple[str, ...]) -> None:
    """Resolve each arm's config as `hicra train` would (unknown keys, bad values, bad credit,
    token-level credit with sequence-level ratios): errors before anything runs."""
    from hicra.train.config import resolve_config

    with tempfile.TemporaryDirectory(prefix="hicra-exp-check-") as tmp:
        folder = Path(tmp)
        for arm in spec.arms:
            config = spec.run_config(folder, arm, spec.seeds[0])
            file = folder / f"{arm}.yaml"
            file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            try:
                resolve_config(["--config", str(file), *flags])
            except HicraError as err:
                message = str(err).replace(f"{file}: ", "").replace(str(file), "the arm's config")
                raise ExperimentError(f"{where}: arm {arm!r}: {message}") from None


def check_folder(spec: ExperimentSpec, folder: Path) -> None:
    """A folder made from another experiment file is refused (naming what differs); the seeds
    may grow and the eval and analysis settings may change (they re-run only what they affect)."""
    saved_path = folder / EXPERIMENT_FILE
    if not saved_path.is_file():
        if folder.is_dir() and any(p.name != ".lock" for p in folder.iterdir()):
            raise ExperimentError(
                f"{folder} is not empty and holds no {EXPERIMENT_FILE}: not an experiment folder; "
                "give another --output-dir"
            )
        return
    saved = load_yaml(saved_path)
    mine = spec.identity()
    for key in TRAINING_KEYS:
        if saved.get(key) != json.loads(json.dumps(mine[key], default=str)):
            detail = _first_difference(saved.get(key), mine[key])
            raise ExperimentError(
                f"{folder} was made from a different experiment file ({key}{detail}); use "
                "another --output-dir, or the file that made it (eval and analysis settings may "
                "change)"
            )


def saved_eval_fingerprint(folder: Path) -> str | None:
    """The eval fingerprint of the experiment file that last ran in the folder (None: none)."""
    path = folder / EXPERIMENT_FILE
    if not path.is_file():
        return None
    saved = load_yaml(path)
    recorded = (saved.get("fingerprints") or {}).get("eval")
    return str(recorded) if recorded else _digest(saved.get("eval") or {})


def _first_difference(old: Any, new: Any, path: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{path}.{key}")
    return f"{path}: {old!r} -> {new!r}"


def save_spec(spec: ExperimentSpec, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(json.loads(json.dumps(spec.to_dict(), default=str)), sort_keys=False)
    (folder / EXPERIMENT_FILE).write_text(text, encoding="utf-8")
