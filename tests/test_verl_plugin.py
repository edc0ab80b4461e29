"""hicra's verl plugin inside the real verl 0.9.1: the entry point, verl's own `_compute_advantage`
against a real TransferQueue on a local Ray cluster, and the start-up errors.

A step's rollouts are written to TransferQueue the way verl's agent loop writes them (verl's own
`AgentLoopOutput.as_dict`, one put per session, prompt tags), sampled by verl's own replay buffer,
then run through the trainer's real `_compute_advantage`; only the LLM rollout itself (vLLM,
SGLang or TRT-LLM: GPU engines) is not run. These tests need the verl environment
(`make test-verl`); elsewhere they are skipped, unless HICRA_REQUIRE_VERL=1 (CI) makes a missing
verl a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

if os.environ.get("HICRA_REQUIRE_VERL") != "1":
    pytest.importorskip("verl", reason="needs verl: `make test-verl` runs these tests")

import transfer_queue as tq
from tensordict import TensorDict
from verl.trainer.ppo.v1 import AgentLoopManagerTQ, get_trainer_cls
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync
from verl.utils.import_utils import load_class_from_fqn

from hicra.advantages import CREDITS, CreditBatch, grpo_advantages
from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.integrations.verl.estimator import TRAINER_MODES
from hicra.run_folder import Metric
from hicra.tagging import PlanningTagger
from hicra.testing.tiny import build_tiny_model
from tests.verl_fixtures import (
    GROUP,
    build_trainer,
    build_worker,
    compose,
    local_transfer_queue,
    put_entropies,
    put_rollouts,
    put_rollouts_by_worker,
    read_rows,
    sample,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "verl" / "hicra_qwen2_5_7b_dapo_math.sh"
# rewards 1, 0, 0, 0 in group "a"; 1, 1, 0, 0 in group "b" (the paper's preset grams tag these)
ROLLOUTS = {
    "a": [
        ("Wait, let me verify: 3 + 4 = 7. So the answer is \\boxed{7}.", 1.0, None),
        ("So the answer is 42.", 0.0, None),
        ("Let me think. 3 + 4 = 8, the answer is 8.", 0.0, None),
        ("The tool said: wait. But wait, it is 6.", 0.0, (0, 11)),  # tool output, not the model's
    ],
    "b": [
        ("First, we need to add: 3 + 4 = 7.", 1.0, None),
        ("Hmm, maybe I can try a different approach. It is 7.", 1.0, None),
        ("We know that the sum is 6.", 0.0, None),
        ("Alternatively, note that 3 + 4 = 5.", 0.0, None),
    ],
}


class Expected(NamedTuple):
    """Per TransferQueue key: the registry's advantages, real tokens, planning tokens, group A."""

    advantages: dict[str, torch.Tensor]
    real: dict[str, torch.Tensor]
    planning: dict[str, torch.Tensor]
    sequence: dict[str, float]


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-verl"))


@pytest.fixture(scope="module")
def transfer_queue():
    with local_transfer_queue():
        yield


def expected_by_registry(tokenizer, credit: str, alpha: float, entropies=None, quantile=0.7):
    """What the TRL path's registry produces for the same ids, rewards and groups: verl's GRPO
    advantages (hicra.grpo_advantages with verl's epsilon), the preset tagger, the credit rule."""
    keys, ids, masks, rewards = [], [], [], []
    for uid, sessions in ROLLOUTS.items():
        for session_id, (text, reward, tool) in enumerate(sessions):
            row = tokenizer.encode(text)
            mask = torch.ones(len(row), dtype=torch.bool)
            if tool is not None:
                mask[tool[0] : tool[1]] = False
            keys.append(f"{uid}_{session_id}_0")
            ids.append(row)
            masks.append(mask)
            rewards.append(reward)
    width = max(len(r) for r in ids)
    real = torch.zeros(len(ids), width, dtype=torch.bool)
    for i, mask in enumerate(masks):
        real[i, : len(mask)] = mask
    tagger = PlanningTagger(StrategicGrams.preset("paper"), tokenizer)
    planning = tagger.token_mask(ids, [mask.tolist() for mask in masks])
    advantages = grpo_advantages(torch.tensor(rewards), GROUP, scale="group", eps=1e-6)
    token_entropies = None
    if entropies is not None:
        token_entropies = torch.zeros(len(ids), width)
        for i, key in enumerate(keys):
            token_entropies[i, : len(ids[i])] = entropies[key]
    threshold = (
        float(torch.quantile(token_entropies[real], quantile)) if entropies is not None else None
    )
    batch = CreditBatch(
        advantages=advantages,
        planning_mask=planning,
        completion_mask=real,
        group_size=GROUP,
        alpha=alpha,
        quantile=quantile,
        entropies=token_entropies,
        entropy_threshold=threshold,
    )
    assigned = CREDITS[credit].rule(batch)
    if assigned.dim() == 1:
        assigned = assigned.unsqueeze(1).expand_as(real)
    assigned = assigned * real
    return Expected(
        advantages={key: assigned[i, : len(ids[i])] for i, key in enumerate(keys)},
        real={key: masks[i] for i, key in enumerate(keys)},
        planning={key: planning[i, : len(ids[i])] for i, key in enumerate(keys)},
        sequence=dict(zip(keys, advantages.tolist(), strict=True)),
    )


# ------------------------------------------------------------------ the entry point
def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def test_entry_point_registers_the_estimator_and_trainers_without_trl():
    run = _python(
        """
        import sys
        import verl  # loads every verl.plugins entry point
        from verl.trainer.ppo.core_algos import get_adv_estimator_fn
        from verl.trainer.ppo.v1 import AgentLoopManagerTQ, get_trainer_cls
        print(get_adv_estimator_fn("hicra").__module__)
        for mode in ("hicra_sync", "hicra_colocate_async", "hicra_separate_async"):
            cls = get_trainer_cls(mode)
            print(mode, cls.__module__, [base.__name__ for base in cls.__mro__[1:3]])
        print("trl imported:", "trl" in sys.modules)
        """
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[0] == "hicra.integrations.verl.estimator"
    assert lines[1:4] == [
        "hicra_sync hicra.integrations.verl.trainers ['HicraTrainerMixin', 'PPOTrainerSync']",
        "hicra_colocate_async hicra.integrations.verl.trainers "
        "['HicraTrainerMixin', 'PPOTrainerColocateAsync']",
        "hicra_separate_async hicra.integrations.verl.trainers "
        "['HicraTrainerMixin', 'PPOTrainerSeparateAsync']",
    ]
    assert lines[4] == "trl imported: False"


def test_without_the_entry_point_the_names_are_unknown():
    """The registration really comes from the entry point: verl's switch turns it off."""
    run = _python(
        """
        import verl
        from verl.trainer.ppo.v1 import AgentLoopManagerTQ, get_trainer_cls
        get_trainer_cls("hicra_sync")
        """,
        VERL_USE_EXTERNAL_PLUGINS="none",
    )
    assert run.returncode != 0
    assert "Unknown trainer 'hicra_sync'" in run.stderr


def test_a_plugin_that_fails_to_load_says_why():
    """verl logs a failing plugin at debug level only; the plugin logs an error with the cause.
    Plain `pip install verl` lacks transfer_queue: simulate exactly that missing module."""
    run = _python(
        """
        import sys
        sys.modules["transfer_queue"] = None  # as if verl[verl-core] were not installed
        import verl
        """
    )
    assert "hicra's verl plugin failed to load" in run.stderr
    assert "transfer_queue" in run.stderr


def test_trainer_modes_listed_in_the_estimator_error_are_the_registered_ones():
    for mode in TRAINER_MODES:
        assert get_trainer_cls(mode).__name__.startswith("HicraTrainer")


# ------------------------------------------------------------------ start-up
@pytest.mark.parametrize("mode", TRAINER_MODES)
def test_each_mode_runs_as_verls_own_mode(model_dir, mode):
    """verl switches on the mode's name (replay buffer, config section): the HICRA trainer hands
    verl its own mode before verl reads it."""
    extra = []
    if mode == "hicra_separate_async":
        extra = [
            "actor_rollout_ref.rollout.nnodes=1",
            "actor_rollout_ref.rollout.n_gpus_per_node=1",
            "actor_rollout_ref.rollout.checkpoint_engine.backend=nccl",
            "trainer.v1.separate_async.parameter_sync_step=1",
        ]
    config = compose(model_dir, f"trainer.v1.trainer_mode={mode}", *extra)
    trainer = get_trainer_cls(mode)(config)
    base = mode.removeprefix("hicra_")
    assert trainer.trainer_mode == base == config.trainer.v1.trainer_mode
    assert trainer.hicra_mode == mode
    buffer = ReplayBuffer if base == "sync" else ReplayBufferAsync
    assert type(trainer.replay_buffer) is buffer
    assert trainer.hicra_settings.hicra_alpha == 0.2 and len(trainer.hicra_grams) == 249


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+algorithm.credit=hicraa"], r"algorithm\.credit: unknown credit 'hicraa'"),
        (["+algorithm.hicra_alpha=1.5"], r"algorithm\.hicra_alpha must be a number in \[0, 1\)"),
        (["+algorithm.hicra_alpah=0.3"], r"did you mean algorithm\.hicra_alpha\?"),
        (
            ["+algorithm.strategic_grams=/no/such/grams.json"],
            r"neither a preset .* nor an existing",
        ),
        (["algorithm.adv_estimator=grpo"], r"hicra_sync applies HICRA on top of .*got 'grpo'"),
        (
            ["+algorithm.credit=high_entropy", "algorithm.rollout_correction.bypass_mode=true"],
            r"credit='high_entropy' needs the token entropies",
        ),
    ],
)
def test_bad_settings_fail_when_the_trainer_is_built(model_dir, overrides, message):
    config = compose(model_dir, *overrides)
    with pytest.raises(HicraError, match=message):
        get_trainer_cls("hicra_sync")(config)


def test_bad_settings_fail_in_every_mode_before_verls_own_checks(model_dir):
    for mode in TRAINER_MODES:
        config = compose(model_dir, f"trainer.v1.trainer_mode={mode}", "+algorithm.hicra_alpha=-1")
        with pytest.raises(HicraError, match="hicra_alpha"):
            get_trainer_cls(mode)(config)


def test_the_documented_cluster_example_is_a_valid_verl_config(tmp_path, model_dir):
    """docs/verl.md's example: every key exists in verl 0.9.1's config, verl's own validation
    passes (batch sizes for 4 nodes x 8 GPUs), and the HICRA trainer accepts it."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    shim = tmp_path / "bin" / "python3"
    shim.parent.mkdir()
    args_file = tmp_path / "args"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" > {args_file}\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}"}
    subprocess.run(["bash", str(EXAMPLE)], check=True, env=env, timeout=60)
    args = args_file.read_text().split("\0")[:-1]
    assert args[:2] == ["-m", "verl.trainer.main_ppo"]
    overrides = args[2:]
    assert "algorithm.adv_estimator=hicra" in overrides
    assert "trainer.v1.trainer_mode=hicra_sync" in overrides
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = hydra_compose(config_name="ppo_trainer", overrides=overrides)
    validate_config(
        config,
        use_reference_policy=need_reference_policy(config),
        use_critic=need_critic(config),
    )
    trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
    assert trainer.hicra_settings.credit == "hicra" and trainer.hicra_settings.hicra_alpha == 0.2
    assert config.trainer.nnodes * config.trainer.n_gpus_per_node == 32


# ------------------------------------------------------------------ verl's advantage step
@pytest.mark.parametrize(("credit", "alpha"), [("hicra", 0.2), ("hicra", 0.5), ("grpo", 0.2)])
def test_compute_advantage_matches_the_registry(model_dir, transfer_queue, credit, alpha):
    trainer = build_trainer(
        model_dir, f"+algorithm.credit={credit}", f"+algorithm.hicra_alpha={alpha}"
    )
    partition = put_rollouts(trainer.tokenizer, ROLLOUTS)
    batch = sample(trainer, partition, prompts=len(ROLLOUTS))
    assert sorted(batch.keys) == sorted(f"{u}_{s}_0" for u in ROLLOUTS for s in range(GROUP))
    metrics: dict = {}
    batch = trainer._compute_advantage(batch, metrics)
    got = read_rows(batch, "advantages")
    returns = read_rows(batch, "returns")
    expected = expected_by_registry(trainer.tokenizer, credit, alpha)
    for key, row in expected.advantages.items():
        assert torch.equal(got[key], row), key
        # returns stay verl's GRPO values: only the advantages change
        grpo = expected.sequence[key] * expected.real[key].float()
        assert torch.allclose(returns[key], grpo, atol=1e-6), key
    # by hand: group a has rewards 1, 0, 0, 0: A = (1 - 0.25) / 0.5 = 1.5 and -0.5
    a_correct, a_wrong = expected.sequence["a_0_0"], expected.sequence["a_1_0"]
    assert a_correct == pytest.approx(1.5, abs=1e-5) and a_wrong == pytest.approx(-0.5, abs=1e-5)
    scale = 1 + alpha if credit == "hicra" else 1.0
    first, planned = got["a_0_0"], expected.planning["a_0_0"]
    assert 0 < int(planned.sum()) < len(first)
    assert first[planned].tolist() == pytest.approx([a_correct * scale] * int(planned.sum()))
    assert first[~planned].tolist() == pytest.approx([a_correct] * int((~planned).sum()))
    failed, planned = got["a_3_0"], expected.planning["a_3_0"]  # "But wait" after a tool output
    assert (failed[:11] == 0).all()  # tool tokens carry no advantage and are never planning
    assert not planned[:11].any() and planned[11:].any()
    scale = 1 - alpha if credit == "hicra" else 1.0
    assert failed[planned].tolist() == pytest.approx([a_wrong * scale] * int(planned.sum()))
    assert metrics[Metric.PLANNING_ADVANTAGE] == pytest.approx(
        float(sum(got[k][expected.planning[k]].sum() for k in got))
        / float(sum(expected.planning[k].sum() for k in got))
    )


def test_hierarchy_metrics_reach_verls_metrics(model_dir, transfer_queue):
    trainer = build_trainer(model_dir)
    partition = put_rollouts(trainer.tokenizer, ROLLOUTS)
    batch = sample(trainer, partition, prompts=len(ROLLOUTS))
    put_entropies(batch)
    metrics: dict = {}
    trainer._compute_advantage(batch, metrics)
    expected = expected_by_registry(trainer.tokenizer, "hicra", 0.2)
    planning = sum(int(row.sum()) for row in expected.planning.values())
    real = sum(int(row.sum()) for row in expected.real.values())
    assert (
        real
        == sum(len(trainer.tokenizer.encode(t)) for g in ROLLOUTS.values() for t, _, _ in g) - 11
    )
    assert metrics[Metric.PLANNING_RATIO] == pytest.approx(planning / real)
    for key in (Metric.SEMANTIC_ENTROPY, Metric.PLANNING_ENTROPY, Metric.EXECUTION_ENTROPY):
        assert 0 < metrics[key] < 10, key
    assert 0 <= metrics[Metric.FORK_PLANNING_HIGH] <= 1
    assert "actor/entropy" not in metrics  # verl's own keys untouched; ours added beside them


OWN_MANAGER = "+actor_rollout_ref.rollout.agent.agent_loop_manager_class=my.Manager"


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ((), ["hicra_planning", "entropy"]),
        (("+algorithm.hierarchy_metrics=false",), ["hicra_planning"]),
        (
            ("algorithm.use_kl_in_reward=true",),
            ["hicra_planning", "entropy", "rm_scores"],
        ),
        ((OWN_MANAGER,), ["responses", "entropy"]),
        ((OWN_MANAGER, "+algorithm.hierarchy_metrics=false"), ["responses"]),
        ((OWN_MANAGER, "algorithm.use_kl_in_reward=true"), ["responses", "entropy", "rm_scores"]),
    ],
)
def test_the_extra_read_skips_what_verls_estimator_call_holds(model_dir, overrides, fields):
    # uids and rewards reach the credit through verl's own read; a field read costs per row;
    # the workers' tags replace the token ids unless the user runs another agent-loop manager
    assert build_trainer(model_dir, *overrides)._hicra_fields() == fields


def test_the_hicra_trainer_runs_hicras_agent_loop_manager_unless_one_is_named(model_dir):
    config = build_trainer(model_dir).config
    manager = config.actor_rollout_ref.rollout.agent.agent_loop_manager_class
    assert manager == "hicra.integrations.verl.workers.HicraAgentLoopManager"
    # verl's main_ppo loads the class by this name; it starts HICRA's workers
    cls = load_class_from_fqn(manager, "AgentLoopManager")
    assert issubclass(cls, AgentLoopManagerTQ)
    assert build_trainer(model_dir, OWN_MANAGER).config.actor_rollout_ref.rollout.agent[
        "agent_loop_manager_class"
    ] == ("my.Manager")


def test_workers_tag_the_responses_and_the_driver_only_applies_the_credit(
    model_dir, transfer_queue
):
    # the same step twice: written as verl's worker writes it and tagged on the driver, then
    # through HICRA's worker (verl's own _agent_loop_postprocess, then the tags)
    driver = build_trainer(model_dir)
    batch = sample(driver, put_rollouts(driver.tokenizer, ROLLOUTS), prompts=len(ROLLOUTS))
    entropies = put_entropies(batch)
    by_driver: dict = {}
    batch = driver._compute_advantage(batch, by_driver)
    driver_advantages = read_rows(batch, "advantages")

    trainer = build_trainer(model_dir)
    worker = build_worker(trainer)
    tagged = sample(trainer, put_rollouts_by_worker(worker, ROLLOUTS), prompts=len(ROLLOUTS))
    assert sorted(tagged.keys) == sorted(batch.keys)
    tq.kv_batch_put(  # the same entropies, by key
        keys=tagged.keys,
        partition_id=tagged.partition_id,
        fields=TensorDict(
            {
                "entropy": torch.nested.as_nested_tensor(
                    [entropies[key] for key in tagged.keys], layout=torch.jagged
                )
            },
            batch_size=len(tagged),
        ),
    )
    expected = expected_by_registry(trainer.tokenizer, "hicra", 0.2)
    tags = read_rows(tagged, "hicra_planning")  # each row: the mask, then gram ids + 2
    occurrences = 0
    for key, planning in expected.planning.items():
        assert torch.equal(tags[key][: len(planning)].bool(), planning), key  # the driver's
        occurrences += len(tags[key]) - len(planning)
    assert any(row.any() for row in tags.values())
    assert occurrences == by_driver[Metric.GRAM_OCCURRENCES] > 0

    reads: list[list[str]] = []
    real_get = tq.kv_batch_get

    def spy(*args, **kwargs):
        reads.append(kwargs["select_fields"])
        return real_get(*args, **kwargs)

    metrics: dict = {}
    tq.kv_batch_get = spy
    try:
        tagged = trainer._compute_advantage(tagged, metrics)
    finally:
        tq.kv_batch_get = real_get
    assert reads[0] == ["hicra_planning", "entropy"]  # not the token ids
    got = read_rows(tagged, "advantages")
    for key, row in expected.advantages.items():
        assert torch.equal(got[key], row), key
        assert torch.equal(got[key], driver_advantages[key]), key
    for key, value in by_driver.items():
        if key.startswith("hicra/"):
            assert metrics[key] == pytest.approx(value, nan_ok=True), key
    record = trainer.hicra_run.pending[1]
    assert (record.correct, record.scored) == (3, 8)


def _put_log_probs(batch, old: float, ref: float) -> None:
    """Constant old-policy and reference log-probs (response-length, nested), as verl stores them."""
    data = tq.kv_batch_get(
        keys=batch.keys, partition_id=batch.partition_id, select_fields=["response_mask"]
    )
    lengths = [int(n) for n in data["response_mask"].offsets().diff()]
    fields = {
        name: torch.nested.as_nested_tensor(
            [torch.full((n,), value) for n in lengths], layout=torch.jagged
        )
        for name, value in (("old_log_probs", old), ("ref_log_prob", ref))
    }
    tq.kv_batch_put(
        keys=batch.keys, partition_id=batch.partition_id, fields=TensorDict(fields, len(batch))
    )


@pytest.mark.parametrize("kl_in_reward", [False, True])
def test_the_run_logs_scores_not_kl_penalised_rewards(model_dir, transfer_queue, kl_in_reward):
    trainer = build_trainer(
        model_dir,
        f"algorithm.use_kl_in_reward={str(kl_in_reward).lower()}",
        "algorithm.kl_ctrl.kl_coef=0.5",
    )
    batch = sample(trainer, put_rollouts(trainer.tokenizer, ROLLOUTS), prompts=len(ROLLOUTS))
    _put_log_probs(batch, old=-1.0, ref=-2.0)  # kl = 1 a token: a reward of 1 drops below 1
    metrics: dict = {}
    trainer._compute_advantage(batch, metrics)
    assert ("actor/reward_kl_penalty" in metrics) == kl_in_reward  # verl's KL did apply
    record = trainer.hicra_run.pending[1]
    # 3 of the 8 responses score 1 (ROLLOUTS): correct by the score, KL or not
    assert (record.correct, record.scored) == (3, 8)


@pytest.mark.parametrize("credit", ["high_entropy", "hicra_entropy_length"])
def test_entropy_credits_read_verls_entropies(model_dir, transfer_queue, credit):
    trainer = build_trainer(model_dir, f"+algorithm.credit={credit}")
    partition = put_rollouts(trainer.tokenizer, ROLLOUTS)
    batch = sample(trainer, partition, prompts=len(ROLLOUTS))
    entropies = put_entropies(batch)
    trainer._compute_advantage(batch, {})
    got = read_rows(batch, "advantages")
    expected = expected_by_registry(trainer.tokenizer, credit, 0.2, entropies=entropies)
    for key, row in expected.advantages.items():
        assert torch.equal(got[key], row), key
    grpo = expected_by_registry(trainer.tokenizer, "grpo", 0.2).advantages
    assert any(not torch.equal(got[k], grpo[k]) for k in grpo)  # the credit did act


def test_the_estimator_refuses_a_plain_verl_trainer(model_dir, transfer_queue):
    config = compose(model_dir, "trainer.v1.trainer_mode=sync")
    trainer = get_trainer_cls("sync")(config)
    trainer._init_tokenizer()
    partition = put_rollouts(trainer.tokenizer, ROLLOUTS)
    batch = sample(trainer, partition, prompts=len(ROLLOUTS))
    with pytest.raises(HicraError, match=r"adv_estimator=hicra runs only inside the HICRA trainer"):
        trainer._compute_advantage(batch, {})


def test_several_outputs_per_session_are_refused(model_dir, transfer_queue):
    trainer = build_trainer(model_dir)
    partition = put_rollouts(trainer.tokenizer, {"a": ROLLOUTS["a"]}, sessions_per_output=2)
    batch = sample(trainer, partition, prompts=1)
    with pytest.raises(HicraError, match=r"several outputs for one session .* adv_estimator=grpo"):
        trainer._compute_advantage(batch, {})


# ------------------------------------------------------------------ the run folder
def _run_step(trainer, global_step: int, rollouts) -> dict:
    """One global step as verl's fit runs it after the rollout: advantages, then verl's metrics."""
    trainer.global_steps = global_step
    if not hasattr(trainer, "resource_pool_manager"):  # built by verl's init; the GPU count
        trainer._init_resource_pool_mgr()  # of its throughput metrics is read from it
    batch = sample(trainer, put_rollouts(trainer.tokenizer, rollouts), prompts=len(rollouts))
    put_entropies(batch, seed=global_step)
    metrics: dict = {}
    trainer._compute_advantage(batch, metrics)
    trainer._compute_metrics(batch, metrics, {"step": 1.0}, global_steps=global_step, epoch=0)
    return metrics


def _flipped(step: int):
    """ROLLOUTS with step-dependent rewards: step s gets s more responses right in group "b"."""
    return {
        uid: [
            (text, 1.0 if uid == "b" and i < step else reward, tool)
            for i, (text, reward, tool) in enumerate(sessions)
        ]
        for uid, sessions in ROLLOUTS.items()
    }


def test_a_verl_run_writes_the_run_folder_hicra_report_reads(model_dir, transfer_queue, tmp_path):
    import json

    import yaml

    from hicra.cli import main

    run = tmp_path / "checkpoints" / "hicra"
    trainer = build_trainer(model_dir, f"trainer.default_local_dir={run.parent}")
    assert not run.exists()  # nothing is written before the first step
    logged = {step: _run_step(trainer, step, _flipped(step)) for step in (1, 2, 3)}

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["engine"] == "verl" and config["credit"] == "hicra"
    assert config["hicra_alpha"] == 0.2 and config["strategic_grams"] == "paper"
    assert config["strategic_grams_resolved"] == {"name": "paper", "count": 249}
    assert config["model_name_or_path"] == str(model_dir) and config["num_generations"] == GROUP

    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    for line in lines:
        metrics = logged[line["step"]]
        # by hand: group "a" has 1 of 4 right, group "b" 2, 2, 3 of 4 at steps 1, 2, 3
        right = 1 + max(2, line["step"])
        assert line[Metric.ACCURACY] == metrics[Metric.ACCURACY] == right / 8
        assert line[Metric.COMPLETIONS] == 8
        assert line[Metric.REWARD] == pytest.approx(metrics["critic/score/mean"])
        assert line[Metric.REWARD] == pytest.approx(right / 8)
        assert line[Metric.LENGTH] == pytest.approx(metrics["response_length/mean"])
        for key in (Metric.PLANNING_RATIO, Metric.SEMANTIC_ENTROPY, Metric.PLANNING_ENTROPY):
            assert line[key] == pytest.approx(metrics[key]), key

    rollouts = [json.loads(line) for line in (run / "rollouts.jsonl").read_text().splitlines()]
    # two whole prompt groups a step (the default), group "a" first
    assert [(r["step"], r["group"]) for r in rollouts] == [
        (step, group) for step in (1, 2, 3) for group in (0, 1) for _ in range(GROUP)
    ]
    first = rollouts[:GROUP]
    own = {}  # completion -> its token count: the model's own tokens (a tool output cut out)
    for text, _, tool in ROLLOUTS["a"]:
        ids = trainer.tokenizer.encode(text)[tool[1] if tool else 0 :]
        own[trainer.tokenizer.decode(ids)] = len(ids)
    assert sorted(r["completion"] for r in first) == sorted(own)
    for row in rollouts:
        completion = row["completion"]
        for start, end, gram in row["planning_spans"]:
            assert completion[start:end].lower() == gram
        assert row["correct"] == (row["reward"] >= 1) and row["answer"] is None
        assert row["prompt"].endswith("Put the answer in \\boxed{}.")
    assert [row["length"] for row in first] == [own[row["completion"]] for row in first]
    wait = next(r for r in first if r["completion"].startswith("Wait, let me verify"))
    assert {"wait", "let me verify"} <= {s[2] for s in wait["planning_spans"]}
    assert wait["advantage"] == pytest.approx(1.5, abs=1e-5) and wait["planning_tokens"] > 0

    # `hicra report` reads it as a hicra train run: accuracy, hierarchy, rollouts
    assert main(["report", str(run), "-o", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    (entry,) = data["runs"]
    assert entry["credit"] == "hicra" and entry["hicra_alpha"] == 0.2
    assert entry["accuracy_source"] == Metric.ACCURACY
    assert entry["final_accuracy"] == pytest.approx(4 / 8, abs=0.13)
    assert entry["rollouts"]["total"] == len(rollouts)
    assert entry["warnings"] == [] and "planning_ratio_first" in entry

    # verl resumes after step 2: step 3 is logged again, once
    resumed = build_trainer(model_dir, f"trainer.default_local_dir={run.parent}")
    _run_step(resumed, 3, _flipped(3))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    # a fresh run into the same folder sets the old logs aside
    fresh = build_trainer(model_dir, f"trainer.default_local_dir={run.parent}")
    _run_step(fresh, 1, _flipped(1))
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert len(list(run.glob("metrics.*.jsonl"))) == 1


def test_the_run_folder_is_checked_when_the_trainer_is_built(model_dir, tmp_path):
    taken = tmp_path / "mine"
    taken.mkdir()
    (taken / "notes.txt").write_text("my own file")
    with pytest.raises(HicraError, match=r"mine is not empty and is not a hicra run folder"):
        build_trainer(model_dir, f"+algorithm.output_dir={taken}")
    with pytest.raises(HicraError, match=r"rollouts_per_step must be >= 0, got -1"):
        build_trainer(model_dir, "+algorithm.rollouts_per_step=-1")
    assert not any(tmp_path.glob("*/hicra"))
