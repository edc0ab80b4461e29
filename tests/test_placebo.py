"""The placebo credit: random frequent n-grams that are not strategic grams, matched in how many
tokens they mark, drawn reproducibly, saved in the run folder, and HICRA's rule applied to them."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import torch

from hicra import PlanningTagger, StrategicGrams
from hicra.advantages import CreditBatch, assign_credit, hicra_advantages
from hicra.testing.tiny import punctuation_reward, smoke_config
from hicra.train.placebo import PLACEBO_FILE, candidate_ngrams, draw_placebo
from tests.test_train_trainer import RecordingTrainer

TEXTS = [
    "Wait, let me check the sum again. The total is the number of apples in the basket.",
    "So the number of apples is the total we need. Let me verify: the basket holds them all.",
    "Hmm, the total of the basket is the answer. We need the number of apples first.",
    "Let me recount the apples in the basket, so the total is the same number again.",
] * 3
GRAMS = StrategicGrams(["wait", "let me", "so", "hmm", "let me verify", "we need"])


def rows_of(tokenizer, texts):
    return [np.asarray(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]


def placebo_trainer(model_dir, out, max_steps: int, **kwargs) -> RecordingTrainer:
    """A placebo run of the tiny model on 64 sums, 32 completions a step, punctuation as the
    strategic grams (which its random text holds), so that a placebo set can be drawn."""
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}]} for i in range(64)]
    return RecordingTrainer(
        model=str(model_dir),
        reward_funcs=[punctuation_reward],
        args=smoke_config(
            out,
            credit="placebo",
            max_steps=max_steps,
            per_device_train_batch_size=32,
            max_completion_length=16,
        ),
        train_dataset=datasets.Dataset.from_list(rows),
        strategic_grams=StrategicGrams(list(",.!?;:"), name="punct"),
        **kwargs,
    )


def test_candidates_are_frequent_and_never_strategic():
    frequent, rare = candidate_ngrams(TEXTS, GRAMS)
    assert "the basket" in frequent and "apples" in frequent
    candidates = frequent + rare
    for gram in candidates:
        assert gram not in GRAMS
        assert not any(f" {g} " in f" {gram} " or f" {gram} " in f" {g} " for g in GRAMS)
    assert "let me" not in candidates and "let me check" not in candidates  # contains "let me"


def test_draw_matches_the_real_ratio_and_is_reproducible(bytelevel_tokenizer):
    tagger = PlanningTagger(GRAMS, bytelevel_tokenizer)
    rows = rows_of(bytelevel_tokenizer, TEXTS)
    first = draw_placebo(TEXTS, rows, GRAMS, tagger, seed=1)
    again = draw_placebo(TEXTS, rows, GRAMS, tagger, seed=1)
    other = draw_placebo(TEXTS, rows, GRAMS, tagger, seed=2)
    assert first.grams.grams == again.grams.grams
    assert first.grams.grams != other.grams.grams
    for draw in (first, other):
        assert abs(draw.placebo_ratio - draw.real_ratio) <= 0.1 * draw.real_ratio
        # the saved ratio is what a tagger with the placebo set really marks
        placebo = PlanningTagger(draw.grams, bytelevel_tokenizer)
        marked = sum(int(placebo.token_mask([r])[0].sum()) for r in rows)
        assert marked / sum(len(r) for r in rows) == pytest.approx(draw.placebo_ratio)
        real = tagger.token_mask([np.concatenate(rows)])[0]
        assert float(real.float().mean()) == pytest.approx(draw.real_ratio, rel=0.05)
        assert draw.grams.provenance["seed"] in (1, 2)


def test_nothing_to_match_without_strategic_grams(bytelevel_tokenizer):
    texts = ["The total of the basket is the number of apples."] * 4
    tagger = PlanningTagger(GRAMS, bytelevel_tokenizer)
    assert draw_placebo(texts, rows_of(bytelevel_tokenizer, texts), GRAMS, tagger, 0) is None


def test_placebo_credit_is_hicras_rule_on_the_placebo_mask():
    adv = torch.tensor([1.0, -1.0])
    placebo = torch.tensor([[True, False, False], [False, True, False]])
    real = torch.ones(2, 3, dtype=torch.bool)
    batch = CreditBatch(adv, torch.zeros(2, 3, dtype=torch.bool), real, 2, placebo_mask=placebo)
    out = assign_credit("placebo", batch)
    assert torch.equal(out, hicra_advantages(adv, placebo, 0.2))
    assert out.tolist() == [[pytest.approx(1.2), 1.0, 1.0], [-1.0, pytest.approx(-0.8), -1.0]]
    with pytest.raises(ValueError, match="needs the placebo mask"):
        assign_credit("placebo", CreditBatch(adv, placebo, real, 2))


def test_placebo_run_saves_its_set_and_resumes_with_it(tiny_model_dir, tmp_path):
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}]} for i in range(64)]
    data = datasets.Dataset.from_list(rows)
    # "grams" that a random tiny model emits: single punctuation marks
    grams = StrategicGrams(list(",.!?;:"), name="punct")

    def trainer(steps, out):
        args = smoke_config(
            out,
            credit="placebo",
            max_steps=steps,
            save_strategy="steps",
            save_steps=1,
            per_device_train_batch_size=32,  # enough completions for n-grams in 2 or more
            max_completion_length=16,
        )
        return RecordingTrainer(
            model=str(tiny_model_dir),
            reward_funcs=[punctuation_reward],
            args=args,
            train_dataset=data,
            strategic_grams=grams,
        )

    out = tmp_path / "run"
    first = trainer(2, out)
    first.train()
    saved = StrategicGrams.load(out / PLACEBO_FILE)
    assert saved.grams == first.control_arm.grams.grams and not set(saved) & set(grams)
    placebo = PlanningTagger(saved, first.processing_class)
    boosted, ratios = 0, []
    for batch in first.generated:
        real = batch["completion_mask"].bool()
        mask = placebo.token_mask(batch["completion_ids"], real)
        expected = hicra_advantages(batch["sequence_advantages"], mask, 0.2)
        assert torch.allclose(batch["advantages"][real], expected[real], atol=1e-6)
        boosted += int((mask & real & (batch["sequence_advantages"][:, None] != 0)).sum())
        ratios.append(float(mask.sum() / real.sum()))
    assert boosted > 0
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["hicra/placebo_ratio"] for m in metrics] == pytest.approx(ratios)
    resumed = trainer(3, out)
    assert resumed.control_arm.grams.grams == saved.grams  # the set is not drawn again
    resumed.train(resume_from_checkpoint=True)
    assert StrategicGrams.load(out / PLACEBO_FILE).grams == saved.grams


def test_placebo_drawn_from_a_given_corpus(tiny_model_dir, tmp_path):
    """`placebo_corpus`: the set comes from the user's texts, matched on their tokens, saved."""
    from transformers import AutoTokenizer

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"completion": t}) + "\n" for t in TEXTS))
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}]} for i in range(16)]
    args = smoke_config(tmp_path / "run", credit="placebo", placebo_corpus=str(corpus), max_steps=1)
    trainer = RecordingTrainer(
        model=str(tiny_model_dir),
        reward_funcs=[punctuation_reward],
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        strategic_grams=GRAMS,
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    expected = draw_placebo(
        TEXTS, rows_of(tokenizer, TEXTS), GRAMS, PlanningTagger(GRAMS, tokenizer), args.seed
    )
    assert trainer.control_arm.grams.grams == expected.grams.grams
    assert StrategicGrams.load(tmp_path / "run" / PLACEBO_FILE).grams == expected.grams.grams
    empty = tmp_path / "plain.txt"
    empty.write_text("The total of the basket is the number of apples.\n")
    with pytest.raises(ValueError, match="no strategic gram"):
        RecordingTrainer(
            model=str(tiny_model_dir),
            reward_funcs=[punctuation_reward],
            args=smoke_config(tmp_path / "r2", credit="placebo", placebo_corpus=str(empty)),
            train_dataset=datasets.Dataset.from_list(rows),
            strategic_grams=GRAMS,
        )


CHECK_TEXTS = [
    "Let me check: the sum of the apples is 7. The basket holds the apples.",
    "So the total is 9. Let me check: the basket has the apples we need.",
    "Let me check: 3 + 4 is 7, the number of apples in the basket.",
    "The apples fill the basket. Let me check: the total is the sum again.",
] * 3
CHECK_GRAMS = StrategicGrams(["let me check", "so"])


def test_placebo_never_marks_a_real_planning_token(bytelevel_tokenizer):
    """The issue's leak: "me check:" passes a string test against "let me check" but marks " me"
    of "let me check"; overlap is now judged on the tokens each candidate marks."""
    frequent, _ = candidate_ngrams(CHECK_TEXTS, CHECK_GRAMS)
    assert "me check:" in frequent and "check:" in frequent  # the string filter lets them by
    tagger = PlanningTagger(CHECK_GRAMS, bytelevel_tokenizer)
    rows = rows_of(bytelevel_tokenizer, CHECK_TEXTS)
    real = [tagger.token_mask([r])[0].numpy() for r in rows]
    for seed in range(8):
        draw = draw_placebo(CHECK_TEXTS, rows, CHECK_GRAMS, tagger, seed=seed)
        assert "me check:" not in draw.grams and "check:" not in draw.grams
        placebo = PlanningTagger(draw.grams, bytelevel_tokenizer)
        for row, planning in zip(rows, real, strict=True):
            assert not (placebo.token_mask([row])[0].numpy() & planning).any()
        assert abs(draw.placebo_ratio / draw.real_ratio - 1) <= 0.1


def test_a_draw_outside_the_tolerance_is_refused(bytelevel_tokenizer):
    """Every candidate marks far more tokens than the real grams: no draw within 10% exists, and
    the draw says so instead of returning a set that upweights the wrong number of tokens."""
    from hicra.train.placebo import PlaceboUnmatched

    texts = ["Wait, apples apples apples apples apples apples."] * 2
    grams = StrategicGrams(["wait"])
    tagger = PlanningTagger(grams, bytelevel_tokenizer)
    with pytest.raises(PlaceboUnmatched, match=r"no placebo set matches .* within 10%"):
        draw_placebo(texts, rows_of(bytelevel_tokenizer, texts), grams, tagger, seed=0)


def test_every_accepted_draw_is_within_tolerance(bytelevel_tokenizer):
    """Over many seeds, every draw returned is within 10% of the real count (retried if not)."""
    tagger = PlanningTagger(GRAMS, bytelevel_tokenizer)
    rows = rows_of(bytelevel_tokenizer, TEXTS)
    for seed in range(20):
        draw = draw_placebo(TEXTS, rows, GRAMS, tagger, seed=seed)
        assert abs(draw.placebo_ratio / draw.real_ratio - 1) <= 0.1
        assert draw.grams.provenance["attempt"] >= 0


def test_an_unmatched_batch_gets_no_placebo_and_the_next_one_is_drawn(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """During training a batch whose draw is refused (no set within 10%) upweights nothing, says
    so once, and the draw is tried again on the next batch. The refusal is forced on the first
    batch here: a random tiny model's completions rarely produce one by themselves."""
    import hicra.train.placebo as placebo_module
    from hicra.train.placebo import PlaceboDraw, PlaceboUnmatched

    calls = []

    def refuse_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise PlaceboUnmatched("no placebo set matches the real planning-token ratio (test)")
        # words the tiny model emits often (a real draw on its 32 completions rarely matches)
        return PlaceboDraw(StrategicGrams(["find", "wait", "alternatively"]), 0.01, 0.01, 3)

    monkeypatch.setattr(placebo_module, "draw_placebo", refuse_first)
    out = tmp_path / "run"
    placebo_trainer(tiny_model_dir, out, max_steps=2).train()
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["hicra/placebo_ratio"] == 0.0  # the refused batch: no placebo tokens
    assert metrics[1]["hicra/placebo_ratio"] > 0.0 and len(calls) >= 2
    assert (out / PLACEBO_FILE).is_file()
    err = capsys.readouterr().err
    assert err.count("drawing again on the next batch") == 1
