"""The controls of issue 28: a placebo drawn among frequent n-grams, away from the final answer and
the format instruction, re-matched over the run; and the random-tokens control."""

from __future__ import annotations

import json

import datasets
import pytest
import torch
from accelerate import Accelerator

from hicra import PlanningTagger, StrategicGrams
from hicra.advantages import CreditBatch, assign_credit, random_token_mask
from hicra.testing.tiny import punctuation_reward, smoke_config
from hicra.train.placebo import (
    ANSWER_OR_FORMAT,
    PLACEBO_FILE,
    PlaceboControl,
    answer_or_format,
    answer_span,
    draw_placebo,
    frequency_floor,
    random_generator,
)
from tests.test_placebo import GRAMS, TEXTS, placebo_trainer, rows_of
from tests.test_train_trainer import RecordingTrainer


# ----------------------------------------------------------------- random tokens
def test_random_token_mask_keeps_each_responses_count_off_planning_tokens():
    planning = torch.tensor(
        [[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]]
    ).bool()
    real = torch.tensor(
        [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]]
    ).bool()
    mask = random_token_mask(planning, real, random_generator(3, 5, 0))
    # as many as the planning tokens: 1, 2, 0; the last row has 1 free token for 3 wanted
    assert mask.sum(dim=1).tolist() == [1, 2, 0, 1]
    assert not (mask & planning).any() and not (mask & ~real).any()
    assert mask[3].tolist() == [False, False, False, True, False, False]
    again = random_token_mask(planning, real, random_generator(3, 5, 0))
    assert torch.equal(mask, again)  # reproducible from seed, step, process


def test_random_token_draws_are_uniform_over_free_tokens():
    planning = torch.zeros(1, 10, dtype=torch.bool)
    planning[0, 0] = True  # one token wanted among the 9 free ones
    real = torch.ones(1, 10, dtype=torch.bool)
    hits = torch.zeros(10)
    for step in range(1800):
        hits += random_token_mask(planning, real, random_generator(1, step, 0))[0].float()
    assert hits[0] == 0 and hits.sum() == 1800
    assert hits[1:].min() > 150 and hits[1:].max() < 250  # 200 each expected


def test_random_tokens_credit_is_hicras_rule_on_the_random_mask():
    adv = torch.tensor([1.0, -1.0])
    chosen = torch.tensor([[False, True, False], [True, False, False]])
    real = torch.ones(2, 3, dtype=torch.bool)
    planning = torch.zeros(2, 3, dtype=torch.bool)
    out = assign_credit("random_tokens", CreditBatch(adv, planning, real, 2, random_mask=chosen))
    assert out.tolist() == [[1.0, pytest.approx(1.2), 1.0], [pytest.approx(-0.8), -1.0, -1.0]]
    with pytest.raises(ValueError, match="needs the random-token mask"):
        assign_credit("random_tokens", CreditBatch(adv, planning, real, 2))


def test_random_tokens_run_logs_its_ratio_beside_planning(tiny_model_dir, tmp_path):
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}]} for i in range(32)]
    out = tmp_path / "run"
    trainer = RecordingTrainer(
        model=str(tiny_model_dir),
        reward_funcs=[punctuation_reward],
        args=smoke_config(out, credit="random_tokens", hierarchy_metrics=False),
        train_dataset=datasets.Dataset.from_list(rows),
        strategic_grams=StrategicGrams(list(",.!?;:"), name="punct"),
    )
    trainer.train()
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    planned = marked = 0
    for batch, logged in zip(trainer.generated, metrics, strict=True):
        real = batch["completion_mask"].bool()
        planning = trainer.tagger.token_mask(batch["completion_ids"], real).bool() & real
        boosted = batch["advantages"] != batch["sequence_advantages"][:, None]
        chosen = boosted & real & (batch["sequence_advantages"][:, None] != 0)
        assert not (chosen & planning).any()  # never a planning token
        assert (chosen.sum(dim=1) <= planning.sum(dim=1)).all()
        planned, marked = planned + int(planning.sum()), marked + int(planning.sum())
        assert logged["hicra/placebo_ratio"] == pytest.approx(
            float(planning.sum() / real.sum()), abs=1e-6
        )  # the same count as planning tokens in every response (none fell short here)
        assert logged["hicra/planning_ratio"] == pytest.approx(logged["hicra/placebo_ratio"])
        assert logged["hicra/placebo_run_ratio"] == pytest.approx(1.0)
    assert planned > 0


# ----------------------------------------------------------------- the placebo's draw
def test_answer_span_is_the_final_answer_statement():
    text = b"Add them. Let me compute it: 4 + 5 = 9. So the answer is \\boxed{9}. Done"
    start, end = answer_span(text)  # back over the sentence that already states 9, not further
    assert text[start:end] == b"Let me compute it: 4 + 5 = 9. So the answer is \\boxed{9}"
    other = b"We get 19. So the answer is \\boxed{9}."  # 19 is not 9
    start, end = answer_span(other)
    assert other[start:end] == b"So the answer is \\boxed{9}"
    nested = b"First.\nThus \\boxed{\\frac{1}{2}} holds"
    start, end = answer_span(nested)
    assert nested[start:end] == b"Thus \\boxed{\\frac{1}{2}}"
    plain = b"We add. The answer is 12. Then we stop."
    start, end = answer_span(plain)
    assert plain[start:end] == b"The answer is 12."
    assert answer_span(b"No final statement here.") is None


def test_answer_or_format_names_the_grams_that_touch_either():
    texts = ["Let me add the apples. So the answer is \\boxed{7}.", "Count the pears first."]
    grams = ["answer is", "apples", "pears", "careful", "the apples", "boxed"]
    flagged = answer_or_format(grams, texts, "You are a careful assistant.")
    assert flagged == ["answer is", "careful", "boxed"]
    assert answer_or_format(["apples", "pears"], texts, "You are a careful assistant.") == []


def test_frequency_floor_is_the_strategic_grams_median_document_count():
    texts = ["wait so", "wait so", "wait", "wait hmm", "nothing"]
    grams = StrategicGrams(["wait", "so", "hmm", "never"])
    # documents: wait 4, so 2, hmm 1 (never: absent) -> median 2
    assert frequency_floor(texts, grams) == 2
    texts = ["wait so hmm"] * 6
    assert frequency_floor(texts, grams) == 6


ANSWER_TEXTS = [
    "Wait, the red apples are in the basket. So the answer is \\boxed{7}.",
    "Hmm, count the red apples in the basket. So the answer is \\boxed{9}.",
    "Wait, the basket holds red apples. So the answer is \\boxed{3}.",
    "Hmm, the red apples fill the basket twice. So the answer is \\boxed{5}.",
] * 3
ANSWER_GRAMS = StrategicGrams(["wait", "hmm"])


def test_the_draw_avoids_answers_format_and_rare_ngrams(bytelevel_tokenizer):
    tagger = PlanningTagger(ANSWER_GRAMS, bytelevel_tokenizer)
    rows = rows_of(bytelevel_tokenizer, ANSWER_TEXTS)
    format_text = "Think briefly, then give the final answer."
    for seed in range(10):
        draw = draw_placebo(ANSWER_TEXTS, rows, ANSWER_GRAMS, tagger, seed, format_text)
        assert draw.grams.provenance[ANSWER_OR_FORMAT] == ()
        assert answer_or_format(list(draw.grams), ANSWER_TEXTS, format_text) == []
        for gram in draw.grams:
            assert "answer" not in gram and "the" not in gram.split()  # format word "the"
            docs = sum(f" {gram} " in f" {t.lower()} " for t in ANSWER_TEXTS)
            assert docs >= draw.grams.provenance["min_docs"] >= 2
        assert abs(draw.placebo_ratio / draw.real_ratio - 1) <= 0.1


# ----------------------------------------------------------------- re-matching over a run
def batch_of(tokenizer, texts, tagger):
    rows = rows_of(tokenizer, texts)
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    real = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.as_tensor(row)
        real[i, : len(row)] = True
    return ids, real, tagger.token_mask(ids, real).bool()


LATER_TEXTS = [
    "Wait, lemons grow by a river and pears grow on a hill.",
    "Hmm, a hill has pears, and a river has cold water.",
    "Wait, cold water runs past lemons on a hill.",
    "Hmm, pears and lemons need water from a river.",
    "Wait, a hill is dry but a river is cold.",
    "Hmm, lemons like a hill, pears like a river.",
] * 2


def test_the_placebo_is_rematched_when_its_run_ratio_drifts(bytelevel_tokenizer, tmp_path):
    """Batch 2 holds planning tokens but none of the drawn n-grams: the run-long ratio falls out of
    the band, the set is drawn again on that batch, aimed at a run-long ratio of 1, and a resume
    from before the re-match goes back to the first set and its counts."""
    tagger = PlanningTagger(GRAMS, bytelevel_tokenizer)
    accelerator = Accelerator(cpu=True)
    control = PlaceboControl(GRAMS, tagger, 5, tmp_path, accelerator)
    ids, real, planning = batch_of(bytelevel_tokenizer, TEXTS, tagger)
    first = control.mask(ids, real, planning, step=0)
    first_set = control.grams.grams
    assert abs(first.sum() / (planning & real).sum() - 1) <= 0.1
    later = batch_of(bytelevel_tokenizer, LATER_TEXTS, tagger)
    assert (
        not PlanningTagger(control.grams, bytelevel_tokenizer).token_mask(later[0], later[1]).any()
    )
    control.mask(*later, step=1)
    assert control.rematches == 1 and control.grams.grams != first_set
    ratio = control.metrics()["hicra/placebo_run_ratio"]
    assert abs(ratio - 1) <= 0.1
    saved = json.loads((tmp_path / PLACEBO_FILE).read_text())
    assert saved["grams"] == list(control.grams) and saved[ANSWER_OR_FORMAT] == []
    assert [d["step"] for d in saved["run"]["draws"]] == [0, 1]
    assert saved["run"]["counts"][-1][1:] == [control.counts.planning, control.counts.control]
    # the same seed draws the same sets
    again = PlaceboControl(GRAMS, tagger, 5, tmp_path / "again", accelerator)
    again.mask(ids, real, planning, step=0)
    again.mask(*later, step=1)
    assert again.grams.grams == control.grams.grams
    # resumed from checkpoint 1: the set and counts of step 0
    resumed = PlaceboControl(GRAMS, tagger, 5, tmp_path, accelerator)
    resumed.mask(ids, real, planning, step=1)
    assert resumed.draws[0]["grams"] == list(first_set)
    assert [row[0] for row in resumed.counts.history] == [0, 1]


def test_a_placebo_run_writes_the_answer_or_format_key(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    run_config = {"system_prompt": "Think, then answer.", "instruction": "Box it."}
    placebo_trainer(tiny_model_dir, out, max_steps=1, run_config=run_config).train()
    saved = json.loads((out / PLACEBO_FILE).read_text())
    assert saved[ANSWER_OR_FORMAT] == []
    assert not {"think", "then", "answer", "box", "it"} & {
        w for g in saved["grams"] for w in g.split()
    }
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["hicra/placebo_run_ratio"] == pytest.approx(
        saved["run"]["counts"][-1][2] / saved["run"]["counts"][-1][1]
    )
    assert metrics[0]["hicra/placebo_rematches"] == 0


def test_answer_only_completions_leave_nothing_neutral_and_say_so(bytelevel_tokenizer):
    """The default task's completions are one answer statement ("Let's compute it: 3 + 3 = 6. So
    the answer is \\boxed{6}." from SmolLM2 on the built-in task): no token is neutral, so the
    draw is refused with that reason instead of upweighting answer tokens."""
    from hicra.train.placebo import PlaceboUnmatched

    texts = [
        f"Let's compute it: {a} + {b} = {a + b}. So the answer is \\boxed{{{a + b}}}."
        for a in range(1, 5)
        for b in range(1, 4)
    ]
    grams = StrategicGrams(["let's"])
    tagger = PlanningTagger(grams, bytelevel_tokenizer)
    with pytest.raises(PlaceboUnmatched, match="nothing neutral to draw a placebo from"):
        draw_placebo(texts, rows_of(bytelevel_tokenizer, texts), grams, tagger, seed=0)


def test_random_tokens_counts_resume_from_the_checkpoint_step(tmp_path):
    from hicra.train.placebo import RandomTokens

    planning = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]]).bool()
    real = torch.ones(2, 4, dtype=torch.bool)
    ids = torch.zeros(2, 4, dtype=torch.long)
    accelerator = Accelerator(cpu=True)
    first = RandomTokens(9, tmp_path, accelerator)
    masks = [first.mask(ids, real, planning, step) for step in range(3)]
    assert [row[1:] for row in first.counts.history] == [[3, 3], [6, 6], [9, 9]]
    resumed = RandomTokens(9, tmp_path, accelerator)  # killed after step 3, resumed from 1
    again = resumed.mask(ids, real, planning, 1)
    assert torch.equal(again, masks[1])  # the uninterrupted run's draw at step 1
    assert [row[0] for row in resumed.counts.history] == [0, 1]
    assert resumed.metrics()["hicra/placebo_run_ratio"] == 1.0
