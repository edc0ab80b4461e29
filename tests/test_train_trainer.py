"""HICRATrainer on a tiny local model: the (B, T) advantages that reach TRL's loss, GRPO equivalence,
the hierarchy metrics and the run-folder logs."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import datasets
import pytest
import torch

from hicra import PlanningTagger
from hicra.testing.tiny import punctuation_grams, punctuation_reward, smoke_config
from hicra.train.config import HICRAConfig
from hicra.train.hicra_trainer import HICRATrainer

# Single punctuation marks as "grams": a random tiny model emits them often enough that every batch
# has planning tokens, which the real grams would not give.
PUNCTUATION = punctuation_grams()
LOSS_TYPES = ["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"]


@pytest.fixture(scope="module")
def prompts():
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}]} for i in range(64)]
    return datasets.Dataset.from_list(rows)


class RecordingTrainer(HICRATrainer):
    """Keeps what reaches the loss, micro-batch by micro-batch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []
        self.generated = []

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        keys = ("completion_ids", "completion_mask", "advantages", "sequence_advantages")
        self.generated.append({k: out[k].clone() for k in keys})
        return out

    def _compute_loss(self, model, inputs):
        keys = ("advantages", "sequence_advantages", "completion_ids", "completion_mask")
        self.seen.append({k: inputs[k].clone() for k in keys})
        return super()._compute_loss(model, inputs)


def make_trainer(model_dir, data, out, trainer_cls=RecordingTrainer, **overrides):
    args = smoke_config(out, **{"data_seed": 7, "credit": "hicra", **overrides})
    return trainer_cls(
        model=str(model_dir),
        reward_funcs=[punctuation_reward],
        args=args,
        train_dataset=data,
        strategic_grams=PUNCTUATION,
    )


def expected_hicra(seq_adv, planning, alpha):
    a = seq_adv.unsqueeze(1).expand_as(planning)
    return torch.where(planning, a * torch.where(a > 0, 1 + alpha, 1 - alpha), a)


def check_seen(trainer, tokenizer, alpha):
    tagger = PlanningTagger(PUNCTUATION, tokenizer)
    planning_nonzero = 0
    for batch in trainer.seen:
        adv, seq = batch["advantages"], batch["sequence_advantages"]
        assert adv.shape == batch["completion_ids"].shape  # (B, T) reaches the loss
        real = batch["completion_mask"].bool()
        planning = tagger.token_mask(batch["completion_ids"], real)
        expected = expected_hicra(seq, planning, alpha)
        assert torch.allclose(adv[real], expected[real], atol=1e-6)
        planning_nonzero += int((planning & real & (seq.unsqueeze(1) != 0)).sum())
    assert planning_nonzero > 0, "the test needs planning tokens with non-zero advantage"


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_hicra_advantages_reach_every_loss_type(tiny_model_dir, prompts, tmp_path, loss_type):
    trainer = make_trainer(tiny_model_dir, prompts, tmp_path, loss_type=loss_type, max_steps=1)
    trainer.train()
    check_seen(trainer, trainer.processing_class, 0.2)


def test_hicra_with_iterations_and_accumulation(tiny_model_dir, prompts, tmp_path):
    trainer = make_trainer(
        tiny_model_dir,
        prompts,
        tmp_path,
        num_iterations=2,
        gradient_accumulation_steps=2,
        per_device_train_batch_size=4,
        max_steps=2,
        hicra_alpha=0.5,
    )
    trainer.train()
    assert len(trainer.seen) == 2 * 2  # steps x micro-batches, reusing one generation twice
    check_seen(trainer, trainer.processing_class, 0.5)


def test_positive_and_negative_completions_hand_checked(tiny_model_dir, prompts, tmp_path):
    trainer = make_trainer(tiny_model_dir, prompts, tmp_path, max_steps=1, hicra_alpha=0.2)
    trainer.train()
    tagger = PlanningTagger(PUNCTUATION, trainer.processing_class)
    signs = set()
    for batch in trainer.seen:
        planning = tagger.token_mask(batch["completion_ids"], batch["completion_mask"])
        for row in range(planning.shape[0]):
            a = float(batch["sequence_advantages"][row])
            for t in torch.nonzero(planning[row]).flatten().tolist():
                got = float(batch["advantages"][row, t])
                assert got == pytest.approx(a * 1.2 if a > 0 else a * 0.8, abs=1e-6)
                signs.add((a > 0) - (a < 0))
    assert {1, -1} <= signs  # both a correct-ish and a failed completion had planning tokens


def _final_params(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


def _losses(folder):
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows]


def test_alpha_zero_and_grpo_credit_are_trls_grpo(tiny_model_dir, prompts, tmp_path):
    grpo = make_trainer(tiny_model_dir, prompts, tmp_path / "grpo", credit="grpo")
    grpo.train()
    zero = make_trainer(tiny_model_dir, prompts, tmp_path / "zero", hicra_alpha=0.0)
    zero.train()
    hicra = make_trainer(tiny_model_dir, prompts, tmp_path / "hicra", hicra_alpha=0.2)
    hicra.train()
    assert grpo.seen[0]["advantages"].dim() == 1  # untouched TRL advantages
    assert _losses(tmp_path / "grpo") == _losses(tmp_path / "zero")
    assert torch.equal(_final_params(grpo), _final_params(zero))
    assert not torch.equal(_final_params(grpo), _final_params(hicra))


def test_plain_grpo_trainer_matches_credit_grpo(tiny_model_dir, prompts, tmp_path):
    """credit='grpo' trains exactly like TRL's own GRPOTrainer on the same config and seed."""
    from trl import GRPOTrainer

    ours = make_trainer(tiny_model_dir, prompts, tmp_path / "ours", credit="grpo")
    ours.train()
    args = HICRAConfig(**{**ours.args.to_replayable_dict(), "output_dir": str(tmp_path / "trl")})
    trl_trainer = GRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=[punctuation_reward],
        args=args,
        train_dataset=prompts,
    )
    trl_trainer.train()
    assert torch.equal(_final_params(ours), _final_params(trl_trainer))


def test_hierarchy_metrics_are_token_weighted_and_logged(tiny_model_dir, prompts, tmp_path):
    trainer = make_trainer(tiny_model_dir, prompts, tmp_path, max_steps=2)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    tagger = PlanningTagger(PUNCTUATION, trainer.processing_class)
    for row, gen in zip(rows, trainer.generated, strict=True):
        planning = tagger.token_mask(gen["completion_ids"], gen["completion_mask"])
        real = gen["completion_mask"].bool()
        assert row["hicra/planning_ratio"] == pytest.approx(float(planning.sum() / real.sum()))
        for key in (
            "hicra/planning_entropy",
            "hicra/execution_entropy",
            "hicra/semantic_entropy",
            "hicra/distinct_grams",
            "hicra/planning_advantage",
            "hicra/fork/planning_high_entropy_share",
        ):
            assert row[key] is not None and row[key] == row[key], key
        # the mean over all tokens is the token-weighted mean of the two classes
        p, e = row["hicra/planning_ratio"], 1 - row["hicra/planning_ratio"]
        combined = p * row["hicra/planning_entropy"] + e * row["hicra/execution_entropy"]
        assert row["hicra/entropy"] == pytest.approx(combined, rel=1e-5)
        assert row["hicra/entropy"] == pytest.approx(row["entropy"], rel=1e-4)


def test_rollouts_and_config_written(tiny_model_dir, prompts, tmp_path):
    trainer = make_trainer(tiny_model_dir, prompts, tmp_path, max_steps=2, rollouts_per_step=1)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "rollouts.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4 and {r["step"] for r in rows} == {1, 2}
    for row in rows:
        assert set(row) >= {
            "prompt",
            "completion",
            "reward",
            "advantage",
            "planning_spans",
            "length",
        }
        for start, end, gram in row["planning_spans"]:
            assert row["completion"][start:end].lower() == gram
        assert row["reward"] == punctuation_reward([[{"content": row["completion"]}]])[0]
    config = (tmp_path / "config.yaml").read_text()
    assert "credit: hicra" in config and "hicra_alpha: 0.2" in config


def test_config_replays_from_its_dict():
    config = HICRAConfig(output_dir="/tmp/x", use_cpu=True, steps_per_generation=2, hicra_alpha=0.3)
    again = HICRAConfig(**config.to_replayable_dict())
    assert again.to_dict() == config.to_dict()


def test_config_takes_trls_checkpointing_default_without_a_futurewarning():
    """TRL still declares `gradient_checkpointing` (default True), transformers' deprecated alias:
    every config warned though the user never used the old name."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        default = HICRAConfig(output_dir="/tmp/x", use_cpu=True)
        off = HICRAConfig(output_dir="/tmp/x", use_cpu=True, gradient_checkpointing=False)
        kwargs = {"use_reentrant": False}
        given = HICRAConfig(output_dir="/tmp/x", use_cpu=True, gradient_checkpointing_kwargs=kwargs)
    assert (default.activation_checkpointing, default.gradient_checkpointing) == (True, True)
    assert (off.activation_checkpointing, off.gradient_checkpointing) == (False, False)
    assert given.activation_checkpointing_kwargs == given.gradient_checkpointing_kwargs == kwargs


def test_config_pins_memory_only_where_there_is_a_device_to_pin_for():
    """The built-in run on a CPU machine warned at every start: torch's 'pin_memory' argument is
    set as true but no accelerator is found."""
    from hicra.train.config import _has_accelerator

    config = HICRAConfig(output_dir="/tmp/x", use_cpu=True)
    assert config.dataloader_pin_memory is _has_accelerator()
    assert _has_accelerator() is torch.accelerator.is_available()


def test_config_validation():
    with pytest.raises(ValueError, match="unknown credit 'nope'; choose from grpo, hicra"):
        HICRAConfig(output_dir="/tmp/x", credit="nope", use_cpu=True)
    with pytest.raises(ValueError, match=r"--hicra-alpha must be a number in \[0, 1\)"):
        HICRAConfig(output_dir="/tmp/x", hicra_alpha=1.0, use_cpu=True)


@pytest.mark.parametrize("credit", ["hicra", "high_entropy", "hicra_entropy_length"])
def test_token_level_credit_with_sequence_level_ratios_is_refused(credit):
    """GSPO/LUSPO weight all tokens of a response by one ratio and the mean advantage: measured
    planning/execution gradient ratio 1.000, i.e. HICRA silently off."""
    with pytest.raises(ValueError, match=r"importance_sampling_level='sequence'.*voids"):
        HICRAConfig(
            output_dir="/tmp/x", credit=credit, importance_sampling_level="sequence", use_cpu=True
        )
    grpo = HICRAConfig(
        output_dir="/tmp/x", credit="grpo", importance_sampling_level="sequence", use_cpu=True
    )
    assert grpo.importance_sampling_level == "sequence"


class EntropyRecordingTrainer(RecordingTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entropies = []

    def _generation_entropies(self, out, mode):
        entropies = super()._generation_entropies(out, mode)
        self.entropies.append(entropies.clone())
        return entropies


def test_high_entropy_credit_scales_only_the_top_entropy_tokens(tiny_model_dir, prompts, tmp_path):
    trainer = make_trainer(tiny_model_dir, prompts, tmp_path, credit="high_entropy", max_steps=1)
    trainer.train()
    changed = 0
    for batch in trainer.seen:
        seq = batch["sequence_advantages"].unsqueeze(1).expand_as(batch["advantages"])
        real = batch["completion_mask"].bool()
        adv = batch["advantages"][real]
        boosted = seq[real] * torch.where(seq[real] > 0, 1.2, 0.8)
        assert torch.all(torch.isclose(adv, seq[real]) | torch.isclose(adv, boosted))
        changed += int((~torch.isclose(adv, seq[real])).sum())
        # about the top 30% of the real tokens (ties aside), among those with A != 0
        share = (~torch.isclose(adv, seq[real])).sum() / (seq[real] != 0).sum().clamp(min=1)
        assert 0.1 < float(share) < 0.5
    assert changed > 0


def test_entropy_length_credit_is_the_pure_function_in_training(prompts, tmp_path):
    from hicra.advantages import hicra_entropy_length_advantages
    from hicra.testing.tiny import build_tiny_model

    varied = build_tiny_model(tmp_path / "model", eos_scale=40.0)  # varied lengths
    trainer = make_trainer(
        varied,
        prompts,
        tmp_path / "run",
        trainer_cls=EntropyRecordingTrainer,
        credit="hicra_entropy_length",
        max_steps=2,
    )
    trainer.train()
    tagger = PlanningTagger(PUNCTUATION, trainer.processing_class)
    amplified_execution = 0
    assert len(trainer.generated) == len(trainer.entropies) == 2
    # the generation batch in order (TRL shuffles rows before the loss; groups are contiguous here)
    for batch, entropies in zip(trainer.generated, trainer.entropies, strict=True):
        real = batch["completion_mask"].bool()
        planning = tagger.token_mask(batch["completion_ids"], real)
        expected = hicra_entropy_length_advantages(
            batch["sequence_advantages"], planning, entropies, real, group_size=4
        )
        assert torch.allclose(batch["advantages"][real], expected[real], atol=1e-6)
        seq = batch["sequence_advantages"].unsqueeze(1).expand_as(expected)
        amplified_execution += int((real & ~planning & ~torch.isclose(expected, seq)).sum())
    assert amplified_execution > 0, "the test needs high-entropy execution tokens that were scaled"


def test_entropy_length_credit_needs_whole_groups_per_process():
    from hicra.train.config import check_whole_groups

    check_whole_groups("hicra_entropy_length", 8, 1, 4)
    check_whole_groups("hicra_entropy_length", 2, 2, 4)
    # 2 processes x 2 completions: TRL accepts it (4 per generation), but each process would
    # hold half a group
    with pytest.raises(ValueError, match=r"\(2\) must be a multiple of num_generations \(4\)"):
        check_whole_groups("hicra_entropy_length", 2, 1, 4)


def test_out_of_vocabulary_ids_do_not_stop_the_tagger_in_training(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tagger = PlanningTagger(PUNCTUATION, tokenizer)
    ids = tokenizer("a, b.", add_special_tokens=False)["input_ids"]
    padded_vocab_id = len(tokenizer) + 5  # models with padded embeddings can sample these
    mask = tagger.token_mask([[*ids, padded_vocab_id]], strict=False)[0].tolist()
    assert mask == [*tagger.token_mask([ids])[0].tolist(), False]
    with pytest.raises(ValueError, match="outside the tokenizer's vocabulary"):
        tagger.token_mask([[*ids, padded_vocab_id]])


def _documented_overrides() -> set[str]:
    """The methods in docs/architecture.md's table of what HICRATrainer overrides in TRL."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text("utf-8")
    section = doc.split("## What HICRATrainer overrides in TRL", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \(", section, flags=re.MULTILINE))


def test_every_trl_override_exists_in_trl_and_is_documented():
    """The `trl<1.17` pin protects this list: each method HICRATrainer overrides must still be a
    GRPOTrainer method (else the override is silently never called), and the list in
    docs/architecture.md and the class docstring must be exactly the overrides."""
    from trl import GRPOTrainer

    own = {
        name
        for name, value in vars(HICRATrainer).items()
        if callable(value) and name != "__init__" and hasattr(GRPOTrainer, name)
    }
    assert own == _documented_overrides()
    assert own == {
        "train",
        "_generate_and_score_completions",
        "_compute_loss",
        "_get_per_token_logps_and_entropies",
        "_tokenize_prompts",
        "_maybe_log_save_evaluate",
    }
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    for name in own:
        assert f"- `{name}` (" in HICRATrainer.__doc__, name
        ours = inspect.signature(getattr(HICRATrainer, name)).parameters.values()
        theirs = inspect.signature(getattr(GRPOTrainer, name)).parameters
        assert {p.name for p in ours if p.kind not in variadic} <= set(theirs), name
    # what the entropy hooks pass by name to TRL's forward
    forward = inspect.signature(GRPOTrainer._get_per_token_logps_and_entropies).parameters
    assert {"batch_size", "compute_entropy"} <= set(forward)
