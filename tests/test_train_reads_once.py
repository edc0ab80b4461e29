"""`hicra train` reads its YAML layer once and checks its numbers once before TRL loads."""

from __future__ import annotations

import hicra.limits
import hicra.train.config  # (bound to the real check_limits: HICRAConfig's own check)
from hicra.train import layers, runner


def test_the_yaml_layer_is_read_once_and_checked_once(tmp_path, monkeypatch, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("hicra_alpha: 0.3\nmax_steps: 3\nuse_cpu: true\n")
    reads, checks = [], []
    load_yaml, check_limits = layers.load_yaml, hicra.limits.check_limits
    monkeypatch.setattr(layers, "load_yaml", lambda path: reads.append(path) or load_yaml(path))
    monkeypatch.setattr(
        hicra.limits,
        "check_limits",
        lambda values, *a, **k: checks.append(dict(values)) or check_limits(values, *a, **k),
    )
    assert runner.run(["--config", str(config), "--max-steps", "4", "--print-config"]) == 0
    assert reads == [config]
    assert checks == [
        {"hicra_alpha": 0.3, "use_cpu": True},
        {"max_steps": 4},
    ]  # YAML less flags; flags
    shown = capsys.readouterr().out
    assert "hicra_alpha: 0.3" in shown and "max_steps: 4" in shown
