"""Outliers must not steer mining (issue 20, point 4): a looping trace counts like a normal one.

RL rollouts often loop until the length limit. One such trace among normal ones used to dominate
the occurrence counts, so that "wait," and "let me" looked like fragments of "wait, let me check".
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from hicra.cli import main
from hicra.mining import counting, mine
from hicra.mining.contrastive.scoring import KEPT
from hicra.mining.ngrams import sentences

FIXTURES = Path(__file__).parent / "fixtures" / "reasoning-traces"
LOOP = "Wait, let me check. " * 262_144  # 5 MB, as in the issue


@pytest.fixture(scope="module")
def with_loop(tmp_path_factory):
    """The 60 real fixture traces (50 correct), then one correct looping trace."""
    with gzip.open(FIXTURES / "traces.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    loop = {"problem": rows[0]["problem"], "completion": LOOP, "correct": True}
    folder = tmp_path_factory.mktemp("loop")
    clean, looped = folder / "clean.jsonl", folder / "looped.jsonl"
    clean.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    looped.write_text(clean.read_text(encoding="utf-8") + json.dumps(loop) + "\n", "utf-8")
    return clean, looped


def test_a_looping_trace_does_not_make_fragments(with_loop):
    clean, looped = with_loop
    before, after = mine([clean]), mine([looped])
    reason = {c.gram: c.reason for c in after.choices}
    assert reason["wait,"] == reason["let me"] == KEPT
    assert {"wait,", "let me", "wait, let me"} <= set(before.grams) & set(after.grams)
    # the loop's sentence counted 3 times, as a normal trace might say it
    assert (
        after.grams.stats["wait,"]["occurrences"] - before.grams.stats["wait,"]["occurrences"]
        == 3  # counting.MAX_SENTENCE_REPEATS
    )
    # line 46 is a real Sky-T1-27B trace that loops on a paragraph (flagged `repetitive`)
    looped_before = before.grams.provenance["looping_traces"]
    assert list(looped_before["first"]) == [f"{clean}:46"]
    looping = after.grams.provenance["looping_traces"]
    assert looping["traces"] == 2 and list(looping["first"]) == [f"{looped}:46", f"{looped}:61"]
    # 65,536 words kept of the trace (sources.MAX_WORDS) = 16,384 sentences, 3 counted
    assert looping["repeated_sentences_not_counted"] == looped_before[
        "repeated_sentences_not_counted"
    ] + (16_384 - 3)


def test_repeated_sentences_count_at_most_three_times():
    """Hand-checked: 5 repeats of one sentence (numbers differ, words the same), 1 other."""
    text = " ".join(f"Wait, check {i}." for i in range(5)) + " Then stop."
    assert counting.MAX_SENTENCE_REPEATS == 3 and counting.LOOP_SHARE == 0.25
    profile = counting.gram_profile([(sentences(text), None)], ["wait,", "check", "stop."], 1, 2)
    assert profile.occurrences.tolist() == [3, 3, 1]
    assert profile.df.tolist() == [1, 1, 1]
    # unigrams: 3 x ("wait,", "check") + ("then", "stop.") = 8; bigrams: 3 x 1 + 1 = 4
    assert profile.order_totals.tolist() == [0, 8, 4]
    assert profile.repeats_skipped == 2
    # skipped 4 of 12 words: 33% >= 25%, a looping trace
    assert profile.looping == (0,)
    short = " ".join(f"Wait, check {i}." for i in range(4)) + " Then we stop here now."
    # 2 of 13 words skipped: 15%, not looping
    assert counting.gram_profile([(sentences(short), None)], ["wait,"], 1, 1).looping == ()


def test_cli_names_the_looping_trace(with_loop, tmp_path, capsys):
    _, looped = with_loop
    assert main(["mine", str(looped), "-o", str(tmp_path / "grams.json")]) == 0
    printed = capsys.readouterr().out
    assert f"looping traces: 2 ({looped}:46, {looped}:61); 16,737 repeated" in printed
