"""The verl plugin's pure parts (settings, one step's credit and metrics): no verl needed.

The same credit registry and tagger as `hicra train`, fed the way verl's driver holds a step:
right-padded responses, rows in any order, padding rows, tool tokens outside the response mask.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hicra.advantages import CREDITS, CreditBatch, hicra_advantages
from hicra.errors import HicraError
from hicra.grams import GramsError, StrategicGrams
from hicra.integrations.verl.credit import (
    StepResponses,
    assign_step_credit,
    hierarchy_metrics,
    read_worker_tags,
    sequence_advantages,
    tag_response,
    tags_dtype,
)
from hicra.integrations.verl.settings import SETTING_KEYS, VerlHicraSettings, read_settings
from hicra.run_folder import Metric
from hicra.tagging import PlanningTagger
from hicra.testing.tiny import build_tiny_tokenizer

GRAMS = StrategicGrams(["wait", "let me verify"], name="test")


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def tagger(tokenizer):
    return PlanningTagger(GRAMS, tokenizer)


def _step(tokenizer, rows, uids, padding=None, entropies=None) -> StepResponses:
    """rows: (text, advantage, tool_span) with tool_span a token range outside the response mask."""
    ids = [tokenizer.encode(text) for text, _, _ in rows]
    width = max(len(r) for r in ids)
    responses = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (row, (_, _, tool)) in enumerate(zip(ids, rows, strict=True)):
        responses[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        if tool is not None:
            mask[i, tool[0] : tool[1]] = 0
    flags = torch.tensor(padding or [False] * len(rows))
    mask[flags] = 0  # verl's padding rows have no response tokens
    advantages = torch.tensor([a for _, a, _ in rows]).unsqueeze(1) * mask  # verl's GRPO layout
    return StepResponses(responses, mask, advantages, list(uids), flags, entropies)


# ------------------------------------------------------------------ settings
def test_settings_defaults_are_hicra_trains():
    assert read_settings({}) == VerlHicraSettings()
    assert VerlHicraSettings() == VerlHicraSettings(
        credit="hicra",
        hicra_alpha=0.2,
        strategic_grams="paper",
        fork_quantile=0.7,
        gram_counting="longest",
        hierarchy_metrics=True,
    )
    chosen = read_settings(
        {"credit": "grpo", "hicra_alpha": 0.1, "gamma": 1.0}, engine_keys={"gamma"}
    )
    assert (chosen.credit, chosen.hicra_alpha) == ("grpo", 0.1)


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [
        (
            {"credit": "hicraa"},
            r"algorithm\.credit: unknown credit 'hicraa'; choose from grpo, hicra",
        ),
        ({"hicra_alpha": 1.5}, r"algorithm\.hicra_alpha must be a number in \[0, 1\), got 1\.5"),
        ({"hicra_alpha": "abc"}, r"algorithm\.hicra_alpha must be a number .* got 'abc'"),
        ({"hicra_alpha": True}, r"algorithm\.hicra_alpha must be a number"),
        ({"fork_quantile": -0.1}, r"algorithm\.fork_quantile must be a number in \[0, 1\)"),
        ({"gram_counting": "most"}, r"algorithm\.gram_counting must be one of longest, all"),
        ({"hierarchy_metrics": "yes"}, r"algorithm\.hierarchy_metrics must be true or false"),
        ({"strategic_grams": ""}, r"algorithm\.strategic_grams must be a non-empty string"),
        ({"hicra_alpah": 0.3}, r"unknown HICRA setting algorithm\.hicra_alpah: did you mean "),
        ({"hicra_beta": 0.3}, r"unknown HICRA setting algorithm\.hicra_beta: HICRA's settings"),
        ({"strategic_gram": "paper"}, r"did you mean algorithm\.strategic_grams\?"),
        ({"rollouts_per_step": -1}, r"algorithm\.rollouts_per_step must be >= 0, got -1"),
        ({"rollouts_per_step": 1.5}, r"algorithm\.rollouts_per_step must be a whole number"),
        ({"output_dir": ""}, r"algorithm\.output_dir must be a non-empty string"),
    ],
)
def test_settings_errors_name_the_key(algorithm, message):
    with pytest.raises(HicraError, match=message):
        read_settings(algorithm, engine_keys={"gamma", "adv_estimator"})


def test_settings_leave_other_keys_alone():
    """verl's own keys and another plugin's keys are not typos of HICRA's."""
    algorithm = {"adv_estimator": "hicra", "my_plugin_threshold": 3}
    assert read_settings(algorithm, engine_keys={"adv_estimator"}) == VerlHicraSettings()
    assert set(SETTING_KEYS) >= {"credit", "hicra_alpha", "strategic_grams"}


def test_entropy_credits_need_recomputed_log_probs():
    for name in ("high_entropy", "hicra_entropy_length"):
        assert read_settings({"credit": name}).credit == name
        with pytest.raises(HicraError, match=rf"credit='{name}' needs the token entropies.*bypass"):
            read_settings({"credit": name}, entropies_available=False)
    assert read_settings({"credit": "hicra"}, entropies_available=False).credit == "hicra"


def test_a_need_the_plugin_cannot_meet_is_a_startup_error(monkeypatch):
    """A credit (the lead's placebo, say) whose input verl cannot give: named with its need."""
    import hicra.advantages as advantages

    monkeypatch.setattr(advantages, "NEEDS", (*advantages.NEEDS, "oracle_mask"))
    monkeypatch.setattr(advantages, "CREDITS", dict(advantages.CREDITS))
    advantages.register_credit("oracle", description="test only", needs=("oracle_mask",))(
        lambda batch: batch.advantages
    )
    with pytest.raises(
        HicraError, match=r"algorithm\.credit='oracle' needs 'oracle_mask', which hicra's verl"
    ):
        read_settings({"credit": "oracle"})


def test_every_registered_credit_is_accepted_or_refused_by_name():
    for name, credit in CREDITS.items():
        unsupported = credit.needs - {"entropies", "whole_groups"}
        if unsupported:
            with pytest.raises(HicraError, match=rf"'{name}' needs '{sorted(unsupported)[0]}'"):
                read_settings({"credit": name})
        else:
            assert read_settings({"credit": name}).credit == name


def test_strategic_grams_file_is_resolved_like_hicra_train(tmp_path):
    with pytest.raises(GramsError, match="neither a preset"):
        StrategicGrams.resolve(read_settings({"strategic_grams": "/no/such.json"}).strategic_grams)


# ------------------------------------------------------------------ one step's credit
def test_sequence_advantage_is_read_at_the_first_response_token():
    token = torch.tensor([[0.0, 2.5, 2.5], [0.0, 0.0, 0.0], [-1.0, -1.0, 0.0]])
    mask = torch.tensor([[0, 1, 1], [0, 0, 0], [1, 1, 0]])
    assert sequence_advantages(token, mask).tolist() == [2.5, 0.0, -1.0]


def test_hicra_on_a_verl_step_hand_computed(tokenizer, tagger):
    # A: +1.5 for the correct response, -0.5 for the others (rewards 1, 0, 0, 0 without the std)
    step = _step(
        tokenizer,
        [
            ("Wait, let me verify: 3 + 4 = 7.", 1.5, None),
            ("So the answer is 42.", -0.5, None),
            ("Wait, no.", -0.5, None),
            ("The tool said: wait.", -0.5, (0, 11)),  # "wait" inside a tool output
            ("So", 0.0, None),
        ],
        uids=["p", "p", "p", "p", "pad"],
        padding=[False, False, False, False, True],
    )
    result = assign_step_credit(
        step, CREDITS["hicra"], tagger, VerlHicraSettings(hicra_alpha=0.2), group_size=4
    )
    adv = result.advantages
    ids = step.responses
    planning_text = [
        tokenizer.decode(ids[row][result.planning_mask[row]]) for row in range(len(ids))
    ]
    assert planning_text == ["Waitlet me verify", "", "Wait", "", ""]
    # planning tokens: A + 0.2|A| = 1.8 (correct), -0.4 (failed); other tokens keep A
    assert adv[0, :14].tolist() == pytest.approx(
        [1.8, 1.5, 1.5, 1.8, 1.8, 1.8, 1.8, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]
    )
    assert adv[1, :6].tolist() == pytest.approx([-0.5] * 6)
    assert adv[2, :4].tolist() == pytest.approx([-0.4, -0.5, -0.5, -0.5])
    assert adv[3, :11].tolist() == [0.0] * 11  # tool tokens: outside the loss, never planning
    assert adv[3, 11].item() == pytest.approx(-0.5)
    assert (adv[:, 14:] == 0).all() and (adv[1, 6:] == 0).all()  # right padding stays 0
    assert adv[4].tolist() == [0.0] * adv.shape[1]  # verl's padding row is untouched
    expected = hicra_advantages(torch.tensor([1.5, -0.5, -0.5, -0.5]), result.planning_mask[:4])
    assert torch.equal(adv[:4], expected * step.response_mask[:4])


def test_grpo_credit_changes_nothing(tokenizer, tagger):
    step = _step(tokenizer, [("Wait, no.", 0.7, None), ("So", -0.7, None)], ["a", "a"])
    result = assign_step_credit(step, CREDITS["grpo"], tagger, VerlHicraSettings(), group_size=2)
    assert torch.equal(result.advantages, step.advantages)
    assert result.planning_mask.sum() == 1  # still tagged, for the metrics


def _entropy_step(tokenizer):
    texts = [
        ("Wait, let me verify: 3 + 4 = 7.", 1.0, None),
        ("So the answer is 42.", -1.0, None),
        ("Wait, no.", 0.5, None),
        ("So the answer is 42. Wait, no.", -0.5, None),
    ]
    generator = torch.Generator().manual_seed(3)
    width = max(len(tokenizer.encode(t)) for t, _, _ in texts)
    entropies = torch.rand(len(texts), width, generator=generator) * 3
    # groups interleaved, as after verl's sequence-length balancing: a, b, a, b
    return _step(tokenizer, texts, ["a", "b", "a", "b"], entropies=entropies)


def test_whole_group_credit_sees_groups_contiguous_and_matches_the_registry(tokenizer, tagger):
    step = _entropy_step(tokenizer)
    settings = VerlHicraSettings(credit="hicra_entropy_length")
    credit = CREDITS["hicra_entropy_length"]
    result = assign_step_credit(step, credit, tagger, settings, group_size=2)
    order = torch.tensor([0, 2, 1, 3])  # group a, then group b
    real = step.response_mask.bool()
    expected = credit.rule(
        CreditBatch(
            advantages=torch.tensor([1.0, 0.5, -1.0, -0.5]),
            planning_mask=result.planning_mask[order],
            completion_mask=real[order],
            group_size=2,
            entropies=step.entropies[order],
        )
    )
    assert torch.equal(result.advantages[order], expected * real[order])
    assert not torch.equal(result.advantages, step.advantages)  # the rule did change something


def test_uneven_groups_are_refused_for_whole_group_credits(tokenizer, tagger):
    step = _entropy_step(tokenizer)
    credit = CREDITS["hicra_entropy_length"]
    with pytest.raises(HicraError, match=r"groups of 2 responses instead of .*rollout\.n=4"):
        assign_step_credit(step, credit, tagger, VerlHicraSettings(), group_size=4)


def test_high_entropy_threshold_is_over_the_whole_step(tokenizer, tagger):
    step = _entropy_step(tokenizer)
    result = assign_step_credit(
        step, CREDITS["high_entropy"], tagger, VerlHicraSettings(), group_size=2
    )
    real = step.response_mask.bool()
    threshold = torch.quantile(step.entropies[real], 0.7)
    high = real & (step.entropies >= threshold)
    assert 0.25 < high.sum() / real.sum() < 0.35  # the top 30% of the step's tokens
    expected = hicra_advantages(torch.tensor([1.0, -1.0, 0.5, -0.5]), high) * real
    assert torch.equal(result.advantages, expected)


def test_hierarchy_metrics_hand_computed(tokenizer, tagger):
    entropies = torch.zeros(3, 14)
    entropies[0, :14] = torch.arange(14, dtype=torch.float)  # planning: 0, 3, 4, 5, 6
    entropies[1, :6] = 10.0
    step = _step(
        tokenizer,
        [
            ("Wait, let me verify: 3 + 4 = 7.", 1.5, None),
            ("So the answer is 42.", -0.5, None),
            ("So", 0.0, None),
        ],
        ["p", "p", "pad"],
        padding=[False, False, True],
        entropies=entropies,
    )
    result = assign_step_credit(step, CREDITS["hicra"], tagger, VerlHicraSettings(), 2)
    metrics = hierarchy_metrics(step, result, fork_quantile=0.7)
    assert metrics[Metric.PLANNING_RATIO] == pytest.approx(5 / 20)
    assert metrics[Metric.PLANNING_ADVANTAGE] == pytest.approx(1.8)
    assert metrics[Metric.EXECUTION_ADVANTAGE] == pytest.approx((9 * 1.5 - 6 * 0.5) / 15)
    assert metrics[Metric.GRAM_OCCURRENCES] == 2 and metrics[Metric.DISTINCT_GRAMS] == 2
    assert metrics[Metric.SEMANTIC_ENTROPY] == pytest.approx(math.log(2))
    assert metrics[Metric.PLANNING_ENTROPY] == pytest.approx((0 + 3 + 4 + 5 + 6) / 5)
    execution = (1 + 2 + 7 + 8 + 9 + 10 + 11 + 12 + 13) + 6 * 10
    assert metrics[Metric.EXECUTION_ENTROPY] == pytest.approx(execution / 15)
    # the 0.7 quantile of the 20 real entropies is 10 (ties): ten tokens >= 10, none planning
    assert metrics[Metric.FORK_PLANNING_HIGH] == 0.0
    assert metrics[Metric.FORK_HIGH_PLANNING] == 0.0
    no_grams = _step(tokenizer, [("So the answer is 42.", 1.0, None)], ["q"])
    plain = hierarchy_metrics(
        no_grams,
        assign_step_credit(no_grams, CREDITS["hicra"], tagger, VerlHicraSettings(), 1),
        0.7,
    )
    assert math.isnan(plain[Metric.SEMANTIC_ENTROPY]) and math.isnan(
        plain[Metric.PLANNING_ADVANTAGE]
    )
    assert Metric.PLANNING_ENTROPY not in plain  # no entropies from verl: no entropy metrics


def test_run_folder_settings_and_path(tmp_path):
    from hicra.integrations.verl.run_log import check_run_folder, run_folder_path

    settings = read_settings({"output_dir": str(tmp_path / "r"), "rollouts_per_step": 0})
    assert settings.output_dir == str(tmp_path / "r") and settings.rollouts_per_step == 0
    assert run_folder_path("ckpt/p/e", None) == Path("ckpt/p/e/hicra")
    assert run_folder_path("ckpt/p/e", str(tmp_path / "r")) == tmp_path / "r"
    with pytest.raises(HicraError, match=r"trainer\.default_local_dir is empty"):
        run_folder_path("", None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(HicraError, match="file"):
        check_run_folder(tmp_path / "file")
    assert check_run_folder(tmp_path / "new") == tmp_path / "new"


def test_a_second_verl_run_into_the_same_folder_is_refused_before_touching_its_logs(tmp_path):
    """Before: two verl drivers with the same run folder interleaved their metrics lines, and the
    second cut or set aside the first one's logs. Now the first holds the folder's lock."""
    import subprocess
    import sys

    from hicra.integrations.verl.run_log import VerlRunLog

    folder = tmp_path / "hicra"
    first = VerlRunLog(folder, {"credit": "hicra"})
    first.write_step(1, {"hicra/planning_ratio": 0.1})
    before = (folder / "metrics.jsonl").read_text()
    code = (
        "from hicra.integrations.verl.run_log import VerlRunLog\n"
        f"VerlRunLog({str(folder)!r}, {{'credit': 'grpo'}}).write_step(1, {{}})"
    )
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert second.returncode != 0
    assert f"hicra run folder {folder.resolve()} is in use by process" in second.stderr
    assert (folder / "metrics.jsonl").read_text() == before  # the first run's log untouched
    first.write_step(2, {"hicra/planning_ratio": 0.2})  # the holder goes on writing
    assert (folder / "metrics.jsonl").read_text().count("\n") == 2


@pytest.mark.parametrize("counting", ["longest", "all"])
def test_tags_made_per_response_in_the_workers_give_the_drivers_credit(tokenizer, tagger, counting):
    rows = [
        ("Wait, let me verify: 3 + 4 = 7. Wait.", 1.5, None),
        ("Wait: then wait, it is 42.", -0.5, (0, 2)),  # "Wait:" is a tool output here
        ("So the answer is 42.", -0.5, None),
        ("Wait, let me verify: 3 + 4 = 7. Wait.", 0.0, None),  # verl's padding: a row's copy
    ]
    step = _step(tokenizer, rows, ["p", "p", "p", "pad"], padding=[False, False, False, True])
    settings = VerlHicraSettings(gram_counting=counting)
    by_driver = assign_step_credit(step, CREDITS["hicra"], tagger, settings, 3)
    tags = []
    for text, _, tool in rows:  # as the worker sees each response: unpadded
        ids = tokenizer.encode(text)
        mask = [1] * len(ids)
        if tool is not None:
            mask[tool[0] : tool[1]] = [0] * (tool[1] - tool[0])
        tags.append(tag_response(tagger, ids, mask, counting))
    names = tagger.grams.grams  # the mask's len(ids) values, then each occurrence's gram index + 2
    first = tags[0][len(tokenizer.encode(rows[0][0])) :]
    assert sorted(first.tolist()) == sorted(
        [names.index("wait") + 2, names.index("wait") + 2, names.index("let me verify") + 2]
    )
    assert tags[0].dtype == torch.uint8  # the paper's 249 grams: a byte a token
    assert len(tags[2]) == len(tokenizer.encode(rows[2][0]))  # no gram: the mask alone
    padded = torch.nn.utils.rnn.pad_sequence(tags, batch_first=True)  # a padded read
    assert padded.shape[1] > step.responses.shape[1]  # rows hold more than the tokens
    tagged = replace(step, responses=None, worker_tags=padded)
    by_workers = assign_step_credit(tagged, CREDITS["hicra"], tagger, settings, 3)
    assert torch.equal(by_workers.planning_mask, by_driver.planning_mask)
    assert not by_workers.planning_mask[1, :2].any() and by_workers.planning_mask[1, 4]
    assert torch.equal(by_workers.advantages, by_driver.advantages)
    assert by_workers.gram_counts == by_driver.gram_counts  # the padding row's copy not counted
    assert sum(by_workers.gram_counts.values()) == 4  # 3 in the first row, 1 in the second
    assert hierarchy_metrics(tagged, by_workers, 0.7) == hierarchy_metrics(step, by_driver, 0.7)


def test_worker_tags_hand_computed():
    # two responses of 3 and 2 tokens; tags: mask then gram index + 2; row 2 is verl's padding
    tags = torch.tensor(
        [[0, 1, 1, 2, 4], [1, 0, 3, 0, 0], [0, 1, 1, 2, 4]], dtype=torch.uint8
    )  # a padded read
    real = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]]).bool()
    padding = torch.tensor([False, False, True])
    planning, counts = read_worker_tags(tags, real, padding, ["a", "b", "c"])
    assert planning.shape == (3, 6)  # verl's responses padded wider than the tags
    assert planning[:2].tolist() == [
        [False, True, True, False, False, False],  # the occurrence 2 at position 3 is no mask
        [True, False, False, False, False, False],
    ]
    assert counts == {"a": 1, "c": 1, "b": 1}  # a (2) and c (4) in row 0, b (3) in row 1
    narrow = read_worker_tags(tags[:, :2], real[:, :2], padding, ["a", "b", "c"])
    assert narrow[0].tolist() == [[False, True], [True, False], [False, True]]
    assert tags_dtype(249) == torch.uint8 and tags_dtype(254) == torch.uint8
    assert tags_dtype(255) == torch.int16 and tags_dtype(40_000) == torch.int32


def test_an_empty_response_is_tagged_as_one_zero(tagger):
    row = tag_response(tagger, [], [], "longest")
    assert row.tolist() == [0] and row.dtype == torch.uint8


def test_a_step_with_neither_ids_nor_tags_is_refused(tokenizer, tagger):
    step = _step(tokenizer, [("Wait.", 1.0, None)], ["p"])
    with pytest.raises(HicraError, match="neither the responses nor their planning masks"):
        assign_step_credit(
            replace(step, responses=None), CREDITS["hicra"], tagger, VerlHicraSettings(), 1
        )
