"""Every example config in configs/ resolves (keys known, values valid), as shipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from hicra.train.config import resolve_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_there_are_example_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_resolves(path):
    # --use-cpu only so that bf16 validates on this CPU machine; nothing is loaded or trained
    resolved = resolve_config(["--config", str(path), "--use-cpu"])
    config, args, layer = resolved.config, resolved.args, resolved.layer
    assert not resolved.auto_output_dir
    assert config.credit == layer.get("credit", "hicra")
    assert args.model == layer["model"] and args.dataset == layer["dataset"]
    assert config.output_dir == layer["output_dir"]
