"""Contrastive selection (hicra mine's default) and gram-set evaluation: scores, tests, CLI, errors."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
import string
from collections import Counter

import numpy as np
import pytest
from scipy.stats import entropy

from hicra import StrategicGrams
from hicra.cli import main
from hicra.mining import (
    CONTRASTIVE,
    PAPER,
    MiningConfig,
    MiningError,
    SelectionRules,
    TraceSpec,
    mine,
)
from hicra.mining.contrastive.corpus import solutions_path
from hicra.mining.contrastive.scoring import (
    CONTRAST_FILE_LANGUAGE,
    FRAGMENT,
    KEPT,
    MATH_BOUND,
    NOT_OPENER,
    PROBLEM_LANGUAGE,
    SOLUTION_LANGUAGE,
    TOPIC_BOUND,
    GramScores,
    binding_contrast,
    extension_shares,
    rate_evenness,
    select,
    weighted_log_odds,
)
from hicra.mining.counting import OccurrenceCounter, gram_profile
from hicra.mining.evaluation.labels import AnnotationError, hit_rates, read_annotations
from hicra.mining.ngrams import sentences
from hicra.mining.sources import SourceError, iter_trace_rows


# ---------------------------------------------------------------- sentences and counting
def test_sentences_mark_math_and_openings():
    text = "Wait, let me see. So 2 + 2 = 4. - **Hmm** then we go!\n  Let me check it"
    found = sentences(text)
    assert [(s.runs, s.has_math, s.opens) for s in found] == [
        ([["wait,", "let", "me", "see."]], False, True),
        ([["so"]], True, True),
        ([["then", "we", "go!"]], False, False),  # "**hmm**" is no text word, no math, no bullet
        ([["let", "me", "check", "it"]], False, True),
    ]
    assert [r for s in found for r in s.runs] == [
        ["wait,", "let", "me", "see."], ["so"], ["then", "we", "go!"], ["let", "me", "check", "it"],
    ]  # fmt: skip


def test_gram_profile_hand_counted():
    texts = {"A": "Wait, let me see. So 2 + 2 = 4. Let me check it.", "B": "Let me see 3 apples."}
    pool = ["let me", "let me see", "wait,", "so"]
    profile = gram_profile(((sentences(t), g) for g, t in texts.items()), pool, 1, 3)
    # "let me": A twice (prose), B once (a sentence with a digit); opens A's 3rd sentence and B's
    # "let me see": only in B ("see." in A is another word); "wait,", "so": once each in A
    assert profile.df.tolist() == [2, 1, 1, 1]
    assert profile.occurrences.tolist() == [3, 1, 1, 1]
    assert profile.math_occurrences.tolist() == [1, 1, 0, 1]
    assert profile.openings.tolist() == [2, 1, 1, 1]
    # runs: A 4 words, 1, 4; B 3, 1 -> unigrams 13, bigrams 8, trigrams 5; math: A's "so", B's
    assert profile.order_totals.tolist() == [0, 13, 8, 5]
    assert profile.order_math_totals.tolist() == [0, 5, 2, 1]
    assert profile.group_names == ["A", "B"] and profile.group_sizes.tolist() == [1, 1]
    cells = dict(zip(profile.group_keys.tolist(), profile.group_df.tolist(), strict=True))
    assert cells == {0: 1, 2: 1, 3: 1, 0 + 4: 1, 1 + 4: 1}  # gram + 4 * group
    counter = OccurrenceCounter(pool, 1, 2)
    for text in ["let me see, let me see.", "so so"]:
        counter.add(text)
    counts, totals = counter.counts, counter.totals
    # unigrams: let, me, "see,", let, me, "see." + so, so = 8; bigrams 5 + 1 = 6
    assert counts.tolist() == [2, 0, 0, 2] and totals.tolist() == [0, 8, 6]


# ---------------------------------------------------------------- scores
def test_weighted_log_odds_hand_computed():
    # alpha = 30 * 12 / 150 = 2.4; delta = ln(12.4 / 117.6) - ln(4.4 / 75.6) = 0.59426;
    # var = 1/12.4 + 1/4.4 -> z = 1.07092. Absent from b: alpha = 1, delta = ln(6/124) - ln(1/79)
    delta, z = weighted_log_odds(np.array([10, 5]), np.array([2, 0]), 100, 50, 30.0)
    assert delta == pytest.approx([0.59426, 1.34093], abs=1e-4)
    assert z == pytest.approx([1.07092, 1.24146], abs=1e-4)
    same, z0 = weighted_log_odds(np.array([20.0]), np.array([10.0]), 200, 100, 500.0)
    assert same[0] == pytest.approx(0.0, abs=1e-12) and z0[0] == pytest.approx(0.0, abs=1e-12)


def test_rate_evenness_is_the_normalized_entropy_of_shrunk_rates():
    df_by_group = np.array([[5, 10, 1], [2, 0, 2], [0, 0, 2]])
    sizes = np.array([10, 20, 2])
    keys, counts = [], []
    for gram, row in enumerate(df_by_group):
        for group, count in enumerate(row):
            if count:
                keys.append(gram + 3 * group)
                counts.append(count)
    df = df_by_group.sum(axis=1)
    got = rate_evenness(np.array(keys), np.array(counts), sizes, df, 2.0)
    share = df / sizes.sum()  # each rate shrunk toward the gram's overall rate by 2 pseudo-traces
    expected = [
        entropy((df_by_group[i] + 2 * share[i]) / (sizes + 2)) / math.log(3) for i in range(3)
    ]
    assert got == pytest.approx(expected)
    assert got[0] == pytest.approx(1.0)  # 0.5 of every group (0.5, 0.5, 0.5): even
    raw = rate_evenness(np.array(keys), np.array(counts), sizes, df, 0.0)  # no shrinking
    assert raw[2] == pytest.approx(0.0)  # in one group only
    assert rate_evenness(np.array([0]), np.array([3]), np.array([5]), np.array([3]), 2.0) is None


def test_rate_evenness_in_blocks_matches(monkeypatch):
    import hicra.mining.contrastive.scoring as scoring

    rng = np.random.default_rng(0)
    n_grams, sizes = 50, np.array([7, 3, 12, 5])
    table = rng.integers(0, 4, size=(n_grams, 4))
    table = np.minimum(table, sizes)
    cells = np.argwhere(table > 0)
    keys = cells[:, 0] + n_grams * cells[:, 1]
    counts = table[cells[:, 0], cells[:, 1]]
    whole = rate_evenness(keys, counts, sizes, table.sum(axis=1), 5.0)
    monkeypatch.setattr(scoring, "_CELLS", 12)  # three grams x four groups at a time
    assert rate_evenness(keys, counts, sizes, table.sum(axis=1), 5.0) == pytest.approx(whole)


def test_extension_shares_hand_computed():
    grams = ["wait a", "wait a minute", "a minute", "let me", "let me see", "me see"]
    occurrences = np.array([10, 9, 12, 40, 8, 9])
    # "wait a": 9/10 by "wait a minute"; "a minute": 9/12; "let me": 8/40; "me see": 8/9
    assert extension_shares(grams, occurrences).tolist() == pytest.approx(
        [0.9, 0.0, 0.75, 0.2, 0.0, 8 / 9]
    )


def test_select_gives_the_first_failed_test_and_ranks_by_df():
    grams = ["a b", "c d", "e f", "g", "h", "i j", "k l", "m n"]
    scores = GramScores(
        df=np.array([50, 40, 30, 20, 45, 10, 60, 10]),
        contrast_log_odds=np.array([1.0, -0.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        contrast_z=np.array([2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 5.0]),
        math_log_odds=np.array([0.0, 0.9, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0]),
        extension_share=np.array([0.1, 0.95, 0.1, 0.0, 0.0, 0.9, 0.0, 0.0]),
        opening_share=np.array([0.0, 0.0, 0.0, 0.4, 0.6, 0.0, 0.0, 0.0]),
        words=np.array([2, 2, 2, 1, 1, 2, 2, 2]),
        evenness=np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.2, 0.9]),
    )
    reasons = select(grams, scores, SelectionRules(max_grams=2, max_math_log_odds=0.5))
    # "c d" fails three tests: the first (contrast) is its reason; 3 pass: df 50, 45, 10
    assert reasons == [
        KEPT, PROBLEM_LANGUAGE, MATH_BOUND, NOT_OPENER, KEPT, FRAGMENT, TOPIC_BOUND, "beyond --max-grams",
    ]  # fmt: skip
    no_groups = GramScores(**{**scores.__dict__, "evenness": None})
    assert select(grams, no_groups, SelectionRules(max_grams=3))[6] == KEPT


# ---------------------------------------------------------------- configuration
def test_selection_is_implied_and_conflicts_are_errors():
    assert MiningConfig().resolved().selection == CONTRASTIVE
    assert MiningConfig().resolved().ngram_min == 1
    paper = MiningConfig(embedder="none").resolved()
    assert (paper.selection, paper.ngram_min, paper.top_fraction) == (PAPER, 3, 0.2)
    assert MiningConfig().resolved(model_given=True).selection == PAPER
    with pytest.raises(MiningError, match="--sparsity: only --selection paper reads it"):
        MiningConfig(selection=CONTRASTIVE, sparsity=True).resolved()
    with pytest.raises(MiningError, match="--contrast: only --selection contrastive reads it"):
        MiningConfig(selection=PAPER, contrast=("problems",)).resolved()
    with pytest.raises(MiningError, match="--embedder belong to --selection paper and --contrast"):
        MiningConfig(embedder="none", contrast=("problems",)).resolved()
    with pytest.raises(MiningError, match="--max-grams must be at least 1"):
        MiningConfig(rules=SelectionRules(max_grams=0)).validate()
    with pytest.raises(MiningError, match="--min-evenness must be in"):
        MiningConfig(rules=SelectionRules(min_evenness=1.5)).validate()


# ---------------------------------------------------------------- a corpus with planted phrases
PLAN, OPENER = "let me double check", "wait,"
PROBLEM, EXEC, TOPIC = "how many apples", "carry the remainder over", "the triangle inequality"
GROUPS = ("algebra", "geometry", "counting", "numbers")


def planted_rows(n: int = 200, seed: int = 0) -> list[dict]:
    """Traces of prose and math sentences with planted phrases; each has its own problem.

    PLAN opens a prose sentence in docs i%2==0; OPENER opens one in i%3==0; PROBLEM is in every
    problem statement and in the prose of i%2==1; EXEC sits in a math sentence of i%10<7; TOPIC is
    in the prose of every "geometry" trace. Trace i is in group (i // 2) % 4; fillers are random.
    """
    rng = random.Random(seed)
    vocab = ["".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(30000)]

    def filler(k: int) -> str:
        return " ".join(rng.choice(vocab) for _ in range(k))

    rows = []
    for i in range(n):
        sentences_ = [f"{filler(8).capitalize()}." for _ in range(6)]
        sentences_ += [f"So {i} + {i + 1} = {2 * i + 1}.", f"Then {3 * i} / 3 = {i}."]
        if i % 2 == 0:
            sentences_.append(f"Let me double check {filler(3)}.")
        if i % 3 == 0:
            sentences_.append(f"Wait, {filler(4)}.")
        if i % 2 == 1:
            sentences_.append(f"{filler(2).capitalize()} how many apples {filler(2)}.")
        if i % 10 < 7:
            sentences_.append(f"We carry the remainder over {i} + 9 = {i + 9}.")
        group = GROUPS[(i // 2) % 4]
        if group == "geometry":
            sentences_.append(f"{filler(2).capitalize()} the triangle inequality {filler(2)}.")
        rng.shuffle(sentences_)
        rows.append(
            {
                "problem": f"Tom has {i} baskets. How many apples are in basket {i % 7}?",
                "completion": " ".join(sentences_),
                "correct": True,
                "dataset": group,
            }
        )
    return rows


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "traces.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in planted_rows()))
    return path


def test_planted_phrases_get_their_reasons(planted):
    result = mine([planted], MiningConfig(min_df=8))
    assert result.selection == CONTRASTIVE and result.corpus.used == 200
    reason = {c.gram: c.reason for c in result.choices}
    assert list(result.grams) == [PLAN, OPENER]  # ranked by document frequency: 100, 67
    assert reason[PROBLEM] == PROBLEM_LANGUAGE
    assert reason[EXEC] == MATH_BOUND
    assert reason[TOPIC] == TOPIC_BOUND
    assert reason["double check"] == reason["let me double"] == FRAGMENT  # inside PLAN
    assert reason["so"] == MATH_BOUND
    assert reason["let"] == FRAGMENT  # opens sentences, but only as "let me"
    stats = result.grams.stats
    assert stats[PLAN]["df"] == 100 and stats[OPENER]["df"] == 67
    assert stats[PLAN]["contrast_occurrences"] == 0 and stats[PLAN]["contrast_log_odds"] > 0
    assert stats[OPENER]["opening_share"] == 1.0
    assert stats[PLAN]["evenness"] > 0.9
    prov = result.grams.provenance
    assert prov["selection"] == CONTRASTIVE and prov["contrast"]["distinct_texts"] == {
        "problems": 200,
        "solutions": 3119,  # the bundled reference solutions
    }
    assert prov["parameters"]["rules"]["max_grams"] == 110 and prov["parameters"]["min_df"] == 8
    assert prov["groups"]["groups"] == 4 and prov["reasons"][KEPT] == 2
    rejected = {r["gram"]: r for r in prov["rejected"]}
    assert rejected[PROBLEM]["reason"] == PROBLEM_LANGUAGE and rejected[PROBLEM]["df"] == 100
    assert rejected[PROBLEM]["contrast_source"] == "problems"
    assert rejected[PROBLEM]["contrast_log_odds"] <= 0
    assert rejected[EXEC] == {"gram": EXEC, "df": 140, "reason": MATH_BOUND}


def test_contrast_file_and_errors(planted, tmp_path):
    rows = planted_rows()
    problems = tmp_path / "problems.txt"
    problems.write_text("".join(r["problem"] + "\n" for r in rows))
    by_file = mine([planted], MiningConfig(min_df=8, contrast=(str(problems),)))
    assert list(by_file.grams) == [PLAN, OPENER]
    assert by_file.contrast.texts == {str(problems): 200}
    rejected = {r["gram"]: r for r in by_file.grams.provenance["rejected"]}
    assert rejected[PROBLEM]["reason"] == CONTRAST_FILE_LANGUAGE
    assert rejected[PROBLEM]["contrast_source"] == str(problems)

    unrelated = tmp_path / "unrelated.jsonl"
    unrelated.write_text(json.dumps({"text": "zebra quokka ocelot"}) + "\n")
    with pytest.raises(MiningError, match=r"shares no n-gram with the .* frequent n-grams"):
        mine([planted], MiningConfig(min_df=8, contrast=(str(unrelated),)))
    with pytest.raises(SourceError, match=r"--contrast nowhere\.txt: does not exist"):
        mine([planted], MiningConfig(contrast=("nowhere.txt",)))

    no_problem = tmp_path / "bare.jsonl"
    no_problem.write_text("".join(json.dumps({"text": r["completion"]}) + "\n" for r in rows))
    with pytest.raises(
        MiningError, match=r"--contrast problems: no problem field in .*bare\.jsonl"
    ):
        mine([no_problem], MiningConfig(min_df=8))
    empty = tmp_path / "empty-problems.jsonl"
    empty.write_text(
        "".join(json.dumps({"text": r["completion"], "problem": "  "}) + "\n" for r in rows)
    )
    with pytest.raises(MiningError, match="the contrast source problems is empty"):
        mine([empty], MiningConfig(min_df=8))
    with pytest.raises(MiningError, match="the contrast corpus is empty"):
        mine([empty], MiningConfig(min_df=8, contrast=("problems",)))
    with pytest.raises(SourceError, match="no field 'question'"):
        mine([planted], MiningConfig(min_df=8), TraceSpec(problem_field="question"))


def test_rows_carry_problem_and_group(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text(
        json.dumps({"completion": "a", "prompt": [{"role": "user", "content": "Q?"}], "correct": 1})
        + "\n"
        + json.dumps({"completion": "b", "correct": True})
        + "\n"
    )
    rows = list(iter_trace_rows([path], TraceSpec()))
    # no subject/type/dataset field: traces of the same problem form a group
    assert rows == [("a", "Q?", "Q?"), ("b", None, None)]
    assert list(iter_trace_rows([path], TraceSpec(group_field="none"))) == [
        ("a", "Q?", None), ("b", None, None),
    ]  # fmt: skip


# ---------------------------------------------------------------- evaluation
def write_annotations(path, rows) -> None:
    path.write_text(
        "".join(json.dumps({"id": str(i), "units": u}) + "\n" for i, u in enumerate(rows))
    )


def unit(text: str, *labels: str) -> dict:
    return {"text": text, "labels": list(labels)}


def test_hit_rates_hand_counted(tmp_path):
    path = tmp_path / "ann.jsonl"
    write_annotations(
        path,
        [
            [
                unit("Wait, that is wrong.", "self_checking"),
                unit("Maybe try another way.", "plan_generation"),
                unit("So 3 + 4 = 7.", "active_computation"),
                unit("Hmm, so the sum is 7.", "result_consolidation"),
            ],
            [
                unit("Let me verify this.", "self_checking"),
                unit("The area is base times height.", "fact_retrieval"),
                unit("Also a note.", "other_tag"),
                unit("Wait, so 2 + 2 = 4.", "uncertainty_management", "active_computation"),
            ],
        ],
    )
    annotations = read_annotations(path)
    assert (len(annotations.planning), len(annotations.execution)) == (3, 3)
    assert (annotations.other, annotations.mixed, annotations.traces) == (1, 1, 2)
    rates = hit_rates(StrategicGrams(["wait", "let me", "hmm,"]), annotations)
    # planning: "Wait, that..." and "Let me verify" hit; execution: "Hmm, so the sum" hits
    assert (rates.planning_hits, rates.execution_hits) == (2, 1)
    assert rates.gap == pytest.approx(2 / 3 - 1 / 3)
    only = read_annotations(path, ["plan_generation"], ["fact_retrieval"])
    assert (only.planning, only.execution) == (
        ["Maybe try another way."],
        ["The area is base times height."],
    )


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        ([[unit("a", "plan_generation")]], {}, "no unit has a execution label"),
        ([[unit("a", "active_computation")]], {}, "no unit has a planning label"),
        ([[unit("a", "x")]], {"planning_labels": ["x"], "execution_labels": ["x"]}, "both planning and"),
        ([[{"labels": ["x"]}]], {}, r"line 1, unit 0: field 'text' must be a string"),
        ([[unit("a", "plan_generation")], "oops"], {}, r"line 2: no 'units' list"),
    ],
)  # fmt: skip
def test_annotation_errors(tmp_path, rows, kwargs, message):
    path = tmp_path / "ann.jsonl"
    if rows and rows[-1] == "oops":
        path.write_text(json.dumps({"units": rows[0]}) + "\n" + json.dumps({"id": 1}) + "\n")
    else:
        write_annotations(path, rows)
    with pytest.raises(AnnotationError, match=message):
        read_annotations(path, **kwargs)


def test_cli_mines_and_evaluates(planted, tmp_path, capsys):
    ann = tmp_path / "ann.jsonl"
    write_annotations(
        ann,
        [
            [
                unit("Let me double check that.", "self_checking"),
                unit("Wait, is it right?", "uncertainty_management"),
                unit("So 5 + 4 = 9.", "active_computation"),
            ]
        ],
    )
    out = tmp_path / "mined.json"
    code = main(["mine", str(planted), "-o", str(out), "--min-df", "8", "--evaluate", str(ann)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "contrast: problems 200, solutions 3,119 distinct texts (0 repeats skipped)" in printed
    assert "groups: 4 (200 traces have one); evenness computed" in printed
    assert f"kept 2 grams, written to {out}" in printed
    assert "#1   'let me double check'" in printed
    assert "1 planning" not in printed and "2 planning-like" in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith(("paper ", str(out)))]
    # paper: "wait" and "let me" hit both planning units, "so" the execution one; mined: 2 of 2, 0
    assert rows[0][:5] == ["paper", "249", "1.000", "1.000", "0.000"]
    assert rows[1][:5] == [str(out), "2", "1.000", "0.000", "1.000"]
    saved = StrategicGrams.load(out)  # what `hicra tag --grams` and training read
    assert saved.provenance["selection"] == CONTRASTIVE and saved.stats[PLAN]["df"] == 100

    assert main(["mine", "--evaluate", str(ann), "--grams", str(out), "paper"]) == 0
    again = capsys.readouterr().out
    assert [line.split()[0] for line in again.splitlines()[-2:]] == ["paper", str(out)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--sparsity", "--selection", "contrastive"],
            "--sparsity: only --selection paper reads it",
        ),
        (["--contrast", "missing.txt"], "--contrast missing.txt: does not exist"),
        (["--max-grams", "5", "--embedder", "none"], "--embedder belong to --selection paper"),
    ],
)
def test_cli_errors(planted, tmp_path, capsys, args, message):
    code = main(["mine", str(planted), "-o", str(tmp_path / "g.json"), *args])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and message in err
    assert not (tmp_path / "g.json").exists()


def test_cli_needs_inputs_or_evaluate(capsys, tmp_path):
    assert main(["mine"]) == 2
    assert "give INPUT files to mine, or --evaluate" in capsys.readouterr().err
    (tmp_path / "t.jsonl").write_text('{"text": "a b c"}\n')
    assert main(["mine", str(tmp_path / "t.jsonl")]) == 2
    assert "--output is needed to mine" in capsys.readouterr().err


def test_cli_constants_match_the_library():
    """commands/mine.py repeats a few names so that `hicra --help` imports nothing heavy."""
    from hicra.commands import mine as command
    from hicra.mining import config
    from hicra.mining.evaluation import labels

    assert (command.CONTRASTIVE, command.PAPER) == (config.CONTRASTIVE, config.PAPER)
    assert command.PLANNING_LABELS == labels.PLANNING_LABELS
    assert command.EXECUTION_LABELS == labels.EXECUTION_LABELS


def test_bounded_memory_gives_the_same_contrastive_set(planted):
    free = mine([planted], MiningConfig(min_df=8))
    tight = mine([planted], MiningConfig(min_df=8, max_table=1000))
    assert tight.grams.grams == free.grams.grams and tight.grams.stats == free.grams.stats
    assert [(c.gram, c.reason, c.df) for c in tight.choices] == [
        (c.gram, c.reason, c.df) for c in free.choices
    ]


def test_cli_never_writes_over_its_input(planted, capsys):
    before = planted.read_bytes()
    assert main(["mine", str(planted), "-o", str(planted)]) == 2
    assert "mining would overwrite its corpus" in capsys.readouterr().err
    assert planted.read_bytes() == before


def test_bundled_solutions_contrast():
    """The default contrast's reference solutions: checksum, rows, licences (assets/contrast)."""
    folder = solutions_path().parent
    digest, name = (folder / "SHA256SUMS").read_text().split()
    assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    with gzip.open(solutions_path(), "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    sources = Counter(r["source"] for r in rows)
    assert sources == {"gsm8k/train.jsonl": 1869, "math/test.jsonl": 1250}
    assert all(r["solution"].strip() for r in rows)
    assert {"LICENSE.grade-school-math", "LICENSE.math-evaluation-harness"} <= {
        p.name for p in folder.iterdir()
    }
    assert MiningConfig().resolved().contrast == ("problems", "solutions")


def test_binding_contrast_is_the_lowest_ratio_above_its_floor():
    """Hand-checked: per gram the source with the smallest log-odds minus floor wins."""
    log_odds = np.array([[1.0, -0.2, 0.5], [0.3, 0.4, -1.5]])  # sources x grams
    z = np.array([[2.0, -1.0, 1.0], [0.5, 0.8, -3.0]])
    margin, z_bound, source = binding_contrast(log_odds, z, [0.0, 0.0])
    assert margin.tolist() == [0.3, -0.2, -1.5] and source.tolist() == [1, 0, 1]
    assert z_bound.tolist() == [0.5, -1.0, -3.0]
    margin, _, source = binding_contrast(log_odds, z, [0.0, -1.0])  # solutions floor -1
    assert margin.tolist() == [1.0, -0.2, -0.5] and source.tolist() == [0, 0, 1]
    scores = GramScores(
        df=np.array([9, 8, 7]),
        contrast_log_odds=margin,
        contrast_z=np.zeros(3),
        math_log_odds=np.zeros(3),
        extension_share=np.zeros(3),
        opening_share=np.ones(3),
        words=np.array([2, 2, 2]),
        evenness=None,
        contrast_source=source,
        contrast_reasons=(PROBLEM_LANGUAGE, SOLUTION_LANGUAGE),
    )
    assert select(["a b", "c d", "e f"], scores, SelectionRules()) == [
        KEPT, PROBLEM_LANGUAGE, SOLUTION_LANGUAGE,
    ]  # fmt: skip


def test_a_gram_no_source_says_passes_by_the_stated_rule():
    """Issue 29: a gram never seen in any problem got a log-odds of 0 up to rounding when the
    problems hold no n-grams of its length, and `<= 0` rejected it as problem language by noise.
    Now a source that never contains a gram passes it (binding_contrast's Decision)."""
    noise = np.array([[-1e-16, 2e-16, -0.4], [0.3, 0.2, 0.1]])  # problems, solutions x grams
    z = np.zeros_like(noise)
    unseen = np.array([[True, True, False], [False, True, False]])
    margin, _, source = binding_contrast(noise, z, [0.0, 0.0], unseen)
    assert margin.tolist() == [0.3, math.inf, -0.4] and source.tolist() == [1, 0, 0]
    assert binding_contrast(noise, z, [0.0, 0.0])[0].tolist() == [-1e-16, 2e-16, -0.4]  # before
    # end to end: problems of two words hold no 3- or 4-grams
    rows = planted_rows()
    for row in rows:
        row["problem"] = "Add them."
    result = mine_rows(rows)
    reason = {c.gram: c.reason for c in result.choices}
    assert reason[PLAN] == KEPT and reason[PROBLEM] == KEPT  # both were "problem language"
    stats = result.grams.stats[PLAN]
    assert stats["contrast_occurrences_by_source"]["problems"] == 0
    assert stats["contrast_log_odds_by_source"]["problems"] == 0.0  # the ratio says nothing
    # one ordinary trace more changes nothing
    rows.append({"problem": "Add them.", "completion": "So 1 + 1 = 2.", "correct": True})
    assert list(mine_rows(rows).grams) == list(result.grams)


def mine_rows(rows):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traces.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return mine([path], MiningConfig(min_df=8))
