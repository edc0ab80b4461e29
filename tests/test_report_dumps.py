"""`hicra report` on rollouts other trainers logged: verl rollout dumps, TRL-style JSONL, Parquet.

Values are checked against hand computation: gram counts of completions written for it, entropies
by their formulas, token counts and planning tokens from the tokenizer's own character offsets
(not the tagger's byte tables). The tiny tokenizer and model keep these fast; one slow test runs
--model on the bundled SmolLM2.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from hicra.cli import main
from hicra.report.build import build_report
from hicra.report.convert import load_dump
from hicra.report.dumps import DEFAULT_TOKENIZER, DumpError, DumpOptions, find_dump
from hicra.run_folder import Metric
from tests.dump_fixtures import (
    BUT_WAIT,
    LET_ME_VERIFY,
    PLAIN,
    PROMPT,
    trl_rows,
    verl_dump,
    write_jsonl,
    write_verl_step,
)

# Step counts of verl_dump: {"but wait": 2, "let me verify": 1} each step.
H_PLUGIN = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
H_MM = H_PLUGIN + (2 - 1) / (2 * 3)


def offsets_planning(tokenizer, text: str, spans: list[tuple[int, int]]) -> list[bool]:
    """Which tokens overlap a gram span, from the tokenizer's character offsets."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return [
        any(start < e and end > s for s, e in spans) and end > start
        for start, end in enc["offset_mapping"]
    ]


def tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir):
    from hicra.models import load_tokenizer

    return load_tokenizer(tiny_model_dir)


def options(tokenizer_dir, **kw) -> DumpOptions:
    return DumpOptions(tokenizer=str(tokenizer_dir), **kw)


def test_verl_dump_metrics_match_hand_computation(tmp_path, tiny_model_dir, tiny_tokenizer):
    dump = verl_dump(tmp_path / "rollout_data", steps=3)
    found = find_dump(dump)
    assert found is not None and found.kind == "verl" and [s for _, s in found.files] == [1, 2, 3]
    run = load_dump(found, options(tiny_model_dir), max_rollouts=5)
    assert run.steps.tolist() == [1, 2, 3]
    assert run.metrics[Metric.ACCURACY].tolist() == [0.0, 0.25, 0.5]  # verl's `acc` extra
    assert run.metrics[Metric.REWARD].tolist() == [0.0, 0.25, 0.5]  # verl's `score`
    assert run.metrics[Metric.COMPLETIONS].tolist() == [4, 4, 4]
    np.testing.assert_allclose(run.metrics[Metric.SEMANTIC_ENTROPY], H_PLUGIN)
    np.testing.assert_allclose(run.metrics[Metric.SEMANTIC_ENTROPY_MM], H_MM)
    assert run.metrics[Metric.GRAM_OCCURRENCES].tolist() == [3, 3, 3]
    assert run.metrics[Metric.DISTINCT_GRAMS].tolist() == [2, 2, 2]
    outputs = [BUT_WAIT, LET_ME_VERIFY, PLAIN, BUT_WAIT]
    spans = [[(0, 8)], [(0, 13)], [], [(0, 8)]]
    lengths = [tokens(tiny_tokenizer, t) for t in outputs]
    planning = [
        sum(offsets_planning(tiny_tokenizer, t, s)) for t, s in zip(outputs, spans, strict=True)
    ]
    assert min(planning[0], planning[1]) >= 2  # the grams span several tokens here
    np.testing.assert_allclose(run.metrics[Metric.LENGTH], np.mean(lengths))
    np.testing.assert_allclose(run.metrics[Metric.PLANNING_RATIO], sum(planning) / sum(lengths))
    assert np.isnan(run.metrics[Metric.PLANNING_ENTROPY]).all()  # no entropies in this dump
    assert "give --model M" in run.why_empty[Metric.PLANNING_ENTROPY]
    assert run.source["fields"]["accuracy"] == "acc" and run.source["token_entropies"] is None
    scan = run.rollouts
    assert scan.total == 12 and scan.outcomes == {"correct": 3, "incorrect": 9}
    assert scan.grams_per_step[2] == {"but wait": 2, "let me verify": 1}
    assert len(scan.samples) == 5 and {r.step for r in scan.samples} == {1, 2, 3}
    sample = next(r for r in scan.samples if r.completion == BUT_WAIT)
    assert sample.prompt == PROMPT and sample.answer == "7"
    assert sample.spans[0][:2] == (0, 8) and sample.planning_tokens == planning[0]


def test_cli_on_verl_dump_writes_a_full_report_beside_it(tmp_path, tiny_model_dir, capsys):
    dump = verl_dump(tmp_path / "rollout_data", steps=12)
    before = sorted(p.name for p in dump.iterdir())
    assert main(["report", str(dump), "--tokenizer", str(tiny_model_dir)]) == 0
    out = tmp_path / "rollout_data-report"
    assert sorted(p.name for p in out.iterdir()) == [
        "dynamics.png",
        "hierarchy.png",
        "report.html",
        "report.json",
    ]
    assert sorted(p.name for p in dump.iterdir()) == before  # nothing mixed into the dump
    result = json.loads((out / "report.json").read_text())["runs"][0]
    assert result["source"]["kind"] == "verl rollout dump"
    assert result["accuracy_source"].startswith("'acc'")
    assert result["per_step"]["step"] == list(range(1, 13))
    assert result["per_step"][Metric.ACCURACY][:3] == [0.0, 0.25, 0.5]
    assert result["per_step"][Metric.GRAM_OCCURRENCES] == [3.0] * 12
    assert result["rollouts"]["total"] == 48
    html = (out / "report.html").read_text()
    assert "verl rollout dump, 48 rollouts" in html and "class='plan'" in html
    assert "no per-token entropies" in capsys.readouterr().err


def test_trl_jsonl_uses_reward_as_accuracy_and_says_so(tmp_path, tiny_model_dir):
    path = write_jsonl(tmp_path / "completions.jsonl", trl_rows(steps=3))
    run = load_dump(find_dump(path), options(tiny_model_dir), max_rollouts=10)
    assert run.metrics[Metric.REWARD].tolist() == [1.25, 2.25, 3.25]
    assert np.isnan(run.metrics[Metric.ACCURACY]).all()
    assert run.accuracy_note == "mean 'reward' (the dump has no accuracy field)"
    assert run.metrics[Metric.GRAM_OCCURRENCES].tolist() == [1, 1, 1]
    assert np.isnan(run.metrics[Metric.SEMANTIC_ENTROPY_MM]).tolist() == [False] * 3
    assert run.metrics[Metric.SEMANTIC_ENTROPY].tolist() == [0.0] * 3  # one gram kind
    result = build_report([path], tmp_path / "out", dump_options=options(tiny_model_dir))
    stats = result.reports[0].stats
    assert stats["accuracy_from_reward"] and stats["accuracy_source"].startswith("mean 'reward'")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "(score)" in html


def test_empty_panels_say_why(tmp_path, tiny_model_dir):
    from matplotlib.figure import Figure

    from hicra.report import plots
    from hicra.report.phases import detect_phases

    path = write_jsonl(tmp_path / "r.jsonl.gz", trl_rows(3))  # gzip, read as it streams
    run = load_dump(find_dump(path), options(tiny_model_dir), 10)
    assert run.label == "r" and run.steps.tolist() == [1, 2, 3]
    phase = detect_phases(run.steps, None, None, None)
    texts = {}
    for panel in (plots.HIERARCHY[0], plots.HIERARCHY[3], plots.HIERARCHY[1]):
        ax = Figure().subplots()
        plots.draw_panel(ax, panel, [run], [phase], 1)
        texts[panel.title] = " ".join(t.get_text().replace("\n", " ") for t in ax.texts)
    assert "no per-token entropies" in texts["Planning-token entropy"]
    assert "give --model M" in texts["Planning-token entropy"]
    assert "not computed from rollout dumps" in texts["Fork-token overlap (top 30% entropy)"]
    assert texts["Planning-token ratio"] == ""  # drawn


def test_correct_field_beats_reward_and_chat_prompts_read(tmp_path, tiny_model_dir):
    rows = trl_rows(steps=2)
    for i, row in enumerate(rows):
        row["correct"] = i % 2 == 0
        row["prompt"] = [{"role": "user", "content": PROMPT}]
    run = load_dump(find_dump(write_jsonl(tmp_path / "r.jsonl", rows)), options(tiny_model_dir), 10)
    assert run.metrics[Metric.ACCURACY].tolist() == [0.5, 0.5]
    assert run.source["fields"]["accuracy"] == "correct"
    assert {r.prompt for r in run.rollouts.samples} == {PROMPT}


def test_parquet_file_reads_like_jsonl(tmp_path, tiny_model_dir):
    rows = trl_rows(steps=3)
    path = tmp_path / "rollouts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    from_parquet = load_dump(find_dump(path), options(tiny_model_dir), 10)
    from_jsonl = load_dump(
        find_dump(write_jsonl(tmp_path / "rollouts.jsonl", rows)), options(tiny_model_dir), 10
    )
    assert from_parquet.steps.tolist() == [1, 2, 3]
    for key, values in from_jsonl.metrics.items():
        np.testing.assert_array_equal(from_parquet.metrics[key], values, err_msg=key)
    assert main(["report", str(path), "--tokenizer", str(tiny_model_dir)]) == 0
    assert (tmp_path / "rollouts-report" / "report.html").is_file()


def test_dumped_token_entropies_split_by_planning(tmp_path, tiny_model_dir, tiny_tokenizer):
    """Entropies logged per token: 2.0 on planning tokens, 1.0 elsewhere (by offsets)."""
    rows = []
    for step in (1, 2):
        for text, spans in ((BUT_WAIT, [(0, 8)]), (PLAIN, [])):
            flags = offsets_planning(tiny_tokenizer, text, spans)
            rows.append(
                {
                    "step": step,
                    "prompt": PROMPT,
                    "completion": text,
                    "reward": 1.0,
                    "token_entropies": [2.0 if f else 1.0 for f in flags],
                }
            )
    rows.append({**rows[0], "token_entropies": [5.0]})  # wrong length: left out, and said
    run = load_dump(find_dump(write_jsonl(tmp_path / "e.jsonl", rows)), options(tiny_model_dir), 10)
    assert run.metrics[Metric.PLANNING_ENTROPY].tolist() == [2.0, 2.0]
    assert run.metrics[Metric.EXECUTION_ENTROPY].tolist() == [1.0, 1.0]
    assert run.source["token_entropies"] == "read from the dump's 'token_entropies' field"
    assert Metric.PLANNING_ENTROPY not in run.why_empty
    assert any(
        "1 of 5 rollouts have 'token_entropies' of another length" in w for w in run.warnings
    )


def direct_entropies(model, tokenizer, prompt: str, completion: str) -> torch.Tensor:
    """Entropy at each completion token, one unpadded row, -sum p log p by hand."""
    context = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context + ids])).logits[0].float()
    logp = torch.log_softmax(logits[len(context) - 1 : len(context) + len(ids) - 1], -1)
    return -(logp.exp() * logp).sum(-1)


def test_model_entropies_match_an_unbatched_pass(tmp_path, tiny_model_dir, tiny_tokenizer):
    """--model: batched, padded, sorted rows give each token the entropy of a lone forward pass."""
    from hicra.models import load_model

    texts = [BUT_WAIT, PLAIN, LET_ME_VERIFY + " " + PLAIN * 3, "So 7."]
    rows = [
        {"step": 1 + i // 2, "prompt": PROMPT, "completion": t, "reward": 1.0}
        for i, t in enumerate(texts)
    ]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    run = load_dump(
        find_dump(path), DumpOptions(model=str(tiny_model_dir), batch_size=3, device="cpu"), 10
    )
    model = load_model(tiny_model_dir).eval()
    spans = [[(0, 8)], [], [(0, 13)], [(0, 2)]]
    for step, pair in ((1, (0, 1)), (2, (2, 3))):
        plan, execute = [], []
        for i in pair:
            values = direct_entropies(model, tiny_tokenizer, PROMPT, texts[i])
            flags = torch.tensor(offsets_planning(tiny_tokenizer, texts[i], spans[i]))
            plan.append(values[flags])
            execute.append(values[~flags])
        at = step - 1
        np.testing.assert_allclose(
            run.metrics[Metric.PLANNING_ENTROPY][at], torch.cat(plan).mean(), rtol=1e-4
        )
        np.testing.assert_allclose(
            run.metrics[Metric.EXECUTION_ENTROPY][at], torch.cat(execute).mean(), rtol=1e-4
        )
    assert run.source["token_entropies"].startswith(f"computed with --model {tiny_model_dir}")
    assert run.source["tokenizer"] == str(tiny_model_dir)


def test_model_and_another_tokenizer_are_refused(tmp_path, tiny_model_dir):
    path = write_jsonl(tmp_path / "m.jsonl", trl_rows(1))
    with pytest.raises(DumpError, match="give --tokenizer or --model, not both"):
        load_dump(find_dump(path), DumpOptions(model=str(tiny_model_dir), tokenizer="x"), 10)


def test_default_tokenizer_is_the_bundled_alias_in_the_help():
    from hicra.commands import report
    from hicra.models import BUNDLED

    assert report.DEFAULT_TOKENIZER == DEFAULT_TOKENIZER and DEFAULT_TOKENIZER in BUNDLED


# --------------------------------------------------------------------------- bad input
def _refused(tmp_path, capsys, path, *expected: str) -> None:
    """One line on stderr naming the file and what is wrong; no report folder written."""
    out = tmp_path / "out"
    assert main(["report", str(path), "-o", str(out), "--tokenizer", "unused"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for text in expected:
        assert text in err, err
    assert not out.exists()


def test_verl_dump_without_step_field(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    write_jsonl(folder / "1.jsonl", [{"input": "q", "output": "a", "gts": "1", "score": 1.0}])
    _refused(tmp_path, capsys, folder, f"{folder / '1.jsonl'}, line 1: no 'step' field")


def test_jsonl_without_step_field(tmp_path, capsys):
    path = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "q", "completion": "a", "reward": 1}])
    _refused(tmp_path, capsys, path, f"{path}, line 1: no 'step' field", "fields: completion")


def test_a_later_row_without_step(tmp_path, capsys):
    rows = [*trl_rows(1), {"prompt": "q", "completion": "a", "reward": 1}]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    _refused(tmp_path, capsys, path, f"{path}, line 3: no 'step' field")


def test_mixed_steps_in_a_verl_step_file(tmp_path, capsys):
    folder = verl_dump(tmp_path / "d", steps=2)
    write_verl_step(folder, 3, ["q", "q"], ["a", "b"], ["1", "1"], [1.0, 0.0])
    lines = (folder / "3.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"step": 3', '"step": 4')
    (folder / "3.jsonl").write_text("\n".join(lines) + "\n")
    _refused(
        tmp_path, capsys, folder, f"{folder / '3.jsonl'}, line 2: step 4 in 3.jsonl", "mixed steps"
    )


def test_non_numeric_score(tmp_path, capsys):
    folder = tmp_path / "d"
    write_verl_step(folder, 1, ["q", "q"], ["a", "b"], ["1", "1"], [1.0, "high"])
    _refused(tmp_path, capsys, folder, f"{folder / '1.jsonl'}, line 2: 'score' is not a number")
    path = write_jsonl(tmp_path / "r.jsonl", [{**trl_rows(1)[0], "reward": [1, 2]}])
    _refused(tmp_path, capsys, path, f"{path}, line 1: 'reward' is not a number")


def test_empty_files(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    path.write_text("")
    _refused(tmp_path, capsys, path, f"{path}: empty (no rollouts in it)")
    folder = verl_dump(tmp_path / "d", steps=2)
    (folder / "3.jsonl").write_text("\n")
    _refused(tmp_path, capsys, folder, f"{folder / '3.jsonl'}: empty (no rollouts in it)")
    empty = tmp_path / "e.parquet"
    schema = pa.schema(
        [("step", pa.int64()), ("completion", pa.string()), ("reward", pa.float64())]
    )
    pq.write_table(pa.Table.from_pylist([], schema=schema), empty)
    _refused(tmp_path, capsys, empty, f"{empty}: empty (no rollouts in it)")


def test_folder_neither_run_nor_dump(tmp_path, capsys):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "notes.jsonl").write_text("{}\n")
    _refused(tmp_path, capsys, folder, "neither a hicra run (no metrics.jsonl) nor a rollout dump")
    text = tmp_path / "notes.txt"
    text.write_text("x")
    _refused(tmp_path, capsys, text, "neither a run folder of hicra train nor a rollout file")


def test_completion_that_is_not_text(tmp_path, capsys):
    path = write_jsonl(tmp_path / "r.jsonl", [{**trl_rows(1)[0], "completion": 3}])
    _refused(tmp_path, capsys, path, f"{path}, line 1: 'completion' is int, not text")


@pytest.mark.slow
def test_model_entropies_on_the_bundled_model(tmp_path):
    """The paper's central panels from a dump with no entropies: --model smollm2-135m, CLI.

    Slow (the real 135M model on CPU): the one check that the real tokenizer, chat model and
    context handling work together; the tiny-model tests above check the values.
    """
    rows = [
        {"step": s, "prompt": PROMPT, "completion": t, "reward": float(s > 1)}
        for s in (1, 2)
        for t in (BUT_WAIT, LET_ME_VERIFY, PLAIN)
    ]
    path = write_jsonl(tmp_path / "few.jsonl", rows)
    assert main(["report", str(path), "--model", "smollm2-135m", "--device", "cpu"]) == 0
    result = json.loads((tmp_path / "few-report" / "report.json").read_text())["runs"][0]
    steps = result["per_step"]
    for key in (Metric.PLANNING_ENTROPY, Metric.EXECUTION_ENTROPY):
        assert all(v is not None and 0 < v < math.log(49152) for v in steps[key]), key
    assert result["source"]["token_entropies"] == (
        "computed with --model smollm2-135m (teacher-forced)"
    )
