"""`hicra report` on rollout dumps written by verl 0.9.1's own code.

verl's trainers dump rollouts with a static method, `_write_generations` (the ray trainer's,
verl/trainer/ppo/ray_trainer.py:454, and the v1 trainer's, verl/trainer/ppo/v1/trainer_base.py:1226,
which serializes numpy values itself); these tests call both, so the report reads the files verl
writes, not a copy of their format. They need the verl environment (`make test-verl`); elsewhere
they are skipped, unless HICRA_REQUIRE_VERL=1 (CI) makes a missing verl a failure.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

if os.environ.get("HICRA_REQUIRE_VERL") != "1":
    pytest.importorskip("verl", reason="needs verl: `make test-verl` runs these tests")

from verl.trainer.ppo.ray_trainer import RayPPOTrainer
from verl.trainer.ppo.v1.trainer_base import PPOTrainer

from hicra.cli import main
from hicra.run_folder import Metric
from tests.dump_fixtures import BUT_WAIT, LET_ME_VERIFY, PLAIN, PROMPT, write_verl_step

OUTPUTS = [BUT_WAIT, LET_ME_VERIFY, PLAIN, BUT_WAIT]


def _step(step: int) -> dict:
    acc = [i < step - 1 for i in range(4)]
    return {
        "inputs": [PROMPT] * 4,
        "outputs": OUTPUTS,
        "gts": ["7"] * 4,
        "scores": [float(a) for a in acc],
        "reward_extra_infos_dict": {"acc": acc, "pred": ["7"] * 4},
    }


def test_fixture_writes_the_bytes_verl_writes(tmp_path):
    """tests/dump_fixtures.write_verl_step is verl's format, byte for byte."""
    for step in (1, 3):
        args = _step(step)
        RayPPOTrainer._write_generations(
            **args, dump_path=str(tmp_path / "verl"), global_steps=step
        )
        write_verl_step(tmp_path / "ours", step, **args)
        name = f"{step}.jsonl"
        assert (tmp_path / "verl" / name).read_bytes() == (tmp_path / "ours" / name).read_bytes()


def test_report_on_a_dump_verl_wrote(tmp_path, tiny_model_dir):
    dump = tmp_path / "rollout_data"
    for step in range(1, 13):
        RayPPOTrainer._write_generations(**_step(step), dump_path=str(dump), global_steps=step)
    assert main(["report", str(dump), "--tokenizer", str(tiny_model_dir)]) == 0
    result = json.loads((tmp_path / "rollout_data-report" / "report.json").read_text())["runs"][0]
    assert result["source"]["kind"] == "verl rollout dump" and result["rollouts"]["total"] == 48
    per_step = result["per_step"]
    assert per_step["step"] == list(range(1, 13))
    assert per_step[Metric.ACCURACY] == [min(s - 1, 4) / 4 for s in range(1, 13)]
    assert per_step[Metric.GRAM_OCCURRENCES] == [3.0] * 12


def test_report_on_a_dump_of_verls_v1_trainer(tmp_path, tiny_model_dir):
    """The v1 trainer dumps `uid` and numpy scores (its own JSON encoder turns them to numbers)."""
    dump = tmp_path / "v1"
    for step in (1, 2, 3):
        args = _step(step)
        args["scores"] = np.array(args["scores"], dtype=np.float32)
        args["reward_extra_infos_dict"] = {"uid": [f"p{step}_{i}_0" for i in range(4)]}
        PPOTrainer._write_generations(**args, dump_path=str(dump), global_steps=step)
    first = json.loads((dump / "1.jsonl").read_text().splitlines()[0])
    assert sorted(first) == ["gts", "input", "output", "score", "step", "uid"]
    assert main(["report", str(dump), "--tokenizer", str(tiny_model_dir)]) == 0
    result = json.loads((tmp_path / "v1-report" / "report.json").read_text())["runs"][0]
    assert result["per_step"][Metric.REWARD] == [0.0, 0.25, 0.5]
    assert result["accuracy_source"] == "mean 'score' (the dump has no accuracy field)"
