"""The configuration layers of `hicra train`, read without importing TRL: fast checks first.

A run's settings come from HICRAConfig's defaults, then one YAML file (`--config FILE`, the
built-in `default` run, or on `--resume` the run folder's own config.yaml), then command-line
flags. This module reads the YAML layer and the raw flags, and checks every numeric value against
`hicra.limits` before the slow import of TRL and transformers: a bad number fails at once.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from hicra.errors import HicraError
from hicra.limits import TRAIN, TRAIN_ALIASES, parse_number
from hicra.run_folder import CONFIG_FILE
from hicra.yaml_io import load_yaml_file

BUILTIN_CONFIGS = ("default",)
# Fields that the trainer adds to config.yaml or that TrainingArguments derives itself.
RECORD_ONLY = {
    "hicra_version",
    "model_name_or_path",
    "strategic_grams_resolved",
    "heldout_content_hash",  # train.resume: what the held-out curve measures
}


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HicraError(f"config file not found: {path}")
    data = load_yaml_file(path)  # the core's loader: alias bombs are refused in milliseconds
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HicraError(f"{path}: a config file must be a YAML mapping of field: value")
    return data


def builtin_config(name: str) -> dict[str, Any]:
    ref = resources.files("hicra").joinpath(f"configs/{name}.yaml")
    with resources.as_file(ref) as path:
        return load_yaml(path)


def flag_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def without_flag(argv: list[str], flag: str) -> list[str]:
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == flag and i + 1 < len(argv):
            skip = True
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out


def is_resume(argv: list[str]) -> bool:
    return any(a in ("--resume", "--resume=true", "--resume=True") for a in argv)


def output_dir_flag(argv: list[str]) -> str | None:
    return flag_value(argv, "--output_dir") or flag_value(argv, "--output-dir")


NEUTRAL_SOURCE = "defaults (--model or --dataset given without --config: no built-in run)"


def own_task(argv: list[str]) -> bool:
    """`--model` or `--dataset` without `--config`: the run starts from HICRAConfig's defaults
    (TRL's, and the paper's where it is precise), not from the built-in arithmetic toy's
    40-token completions, one-shot example and learning rate."""
    return any(flag_value(argv, f) is not None for f in ("--model", "--dataset"))


def yaml_layer(argv: list[str]) -> tuple[dict[str, Any], str]:
    """The YAML layer a command line selects, and where it came from (for error messages)."""
    config_name = flag_value(argv, "--config")
    output_dir = output_dir_flag(argv)
    saved = Path(output_dir) / CONFIG_FILE if output_dir else None
    if config_name is None and is_resume(argv) and saved is not None and saved.is_file():
        layer = {k: v for k, v in load_yaml(saved).items() if k not in RECORD_ONLY}
        return layer, str(saved)
    if config_name is None and own_task(argv):  # your model or data: not the toy's settings
        return {}, NEUTRAL_SOURCE
    if config_name is None or config_name in BUILTIN_CONFIGS:
        name = config_name or "default"
        return builtin_config(name), f"built-in config {name!r}"
    return load_yaml(Path(config_name)), config_name


def raw_flag_values(argv: list[str]) -> dict[str, Any]:
    """The numeric flags of a command line as numbers (`--max-steps -5`, `--alpha=0.3`)."""
    names = {f"--{n}": n for n in TRAIN} | {f"--{n.replace('_', '-')}": n for n in TRAIN}
    names |= {f"--{alias}": name for alias, name in TRAIN_ALIASES.items()}
    values: dict[str, Any] = {}
    for i, arg in enumerate(argv):
        key, _, inline = arg.partition("=")
        if key not in names:
            continue
        text = inline if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else None)
        if text is not None:
            values[names[key]] = None if text.lower() == "none" else parse_number(text)
    return values


def check_numbers_early(argv: list[str]) -> tuple[dict[str, Any], str]:
    """Check the numeric values of the YAML layer, then of the flags (which override it).

    Returns the YAML layer and its source (as `yaml_layer`), so that `resolve_config` builds on
    the file read here instead of reading it again."""
    from hicra.limits import check_limits

    layer, source = yaml_layer(argv)
    flags = raw_flag_values(argv)
    check_limits({k: v for k, v in layer.items() if k not in flags}, TRAIN, source, style="key")
    check_limits(flags, TRAIN)
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if several and not (output_dir_flag(argv) or layer.get("output_dir")):
        # each process would pick its own timestamped folder and split the checkpoints
        raise HicraError("with several processes, give the run folder: --output-dir DIR")
    return layer, source
