"""hicra mine on real long chain-of-thought traces (tests/fixtures/reasoning-traces, see its README)."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from pathlib import Path

import pytest

from hicra import StrategicGrams
from hicra.cli import main
from hicra.mining import MiningConfig, compare_to_reference, mine
from hicra.mining.contrastive.scoring import KEPT, PROBLEM_LANGUAGE, SOLUTION_LANGUAGE
from hicra.mining.evaluation.labels import hit_rates, read_annotations

FIXTURES = Path(__file__).parent / "fixtures" / "reasoning-traces"


def test_fixture_checksums():
    for line in (FIXTURES / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest() == digest, name
    for name in ("LICENSE.SkyThought", "LICENSE.thought-anchors", "README.md"):
        assert (FIXTURES / name).is_file()


def _unzip(name: str, folder: Path) -> Path:
    target = folder / name.removesuffix(".gz")
    with gzip.open(FIXTURES / name, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    return _unzip("traces.jsonl.gz", folder), _unzip("annotations.jsonl.gz", folder)


def _contains(gram: str, text: str) -> bool:
    """The tagger's rule written independently: whole words where the gram has word edges."""
    left = r"(?<!\w)" if re.match(r"\w", gram) else ""
    right = r"(?!\w)" if re.search(r"\w$", gram) else ""
    pattern = left + r"\s+".join(re.escape(w) for w in gram.split()) + right
    return re.search(pattern, text.replace("\u2019", "'"), re.IGNORECASE) is not None


def test_contrastive_beats_the_papers_pipeline_on_real_traces(real):
    traces, annotations_path = real
    contrastive = mine([traces])
    paper = mine([traces], MiningConfig(embedder="none"))  # the paper's pipeline, no model
    assert contrastive.corpus.used == paper.corpus.used == 50  # the 10 incorrect ones are left out
    grams = set(contrastive.grams)
    assert {"wait,", "alternatively,", "let me", "hmm,"} <= grams  # how solvers steer
    choice = {c.gram: c for c in contrastive.choices}
    for problem_words in ("find the", "in the"):  # what the problems say more than solutions
        assert choice[problem_words].reason == PROBLEM_LANGUAGE
        assert choice[problem_words].scores["contrast_source"] == "problems"
    # execution vocabulary: said more by solvers than by the problems, so the problem contrast
    # alone kept it (issue 23); the bundled reference solutions say it more still
    for execution_words in ("for the", "from the", "number of", "the total", "we have"):
        by_source = choice[execution_words].scores["contrast_log_odds_by_source"]
        assert by_source["problems"] > 0 > by_source["solutions"]
        assert choice[execution_words].reason == SOLUTION_LANGUAGE
    preset = StrategicGrams.preset("paper")
    ours = compare_to_reference(contrastive.grams, preset)
    theirs = compare_to_reference(paper.grams, preset)
    assert ours.overlap_precision > theirs.overlap_precision
    assert ours.overlap_recall > theirs.overlap_recall
    labels = read_annotations(annotations_path)
    gap = hit_rates(contrastive.grams, labels).gap
    assert gap > hit_rates(paper.grams, labels).gap
    assert gap > hit_rates(preset, labels).gap
    assert sum(c.reason == KEPT for c in contrastive.choices) == len(contrastive.grams) == 110


def test_evaluate_on_real_labels(real, capsys):
    _, annotations_path = real
    assert main(["mine", "--evaluate", str(annotations_path)]) == 0
    printed = capsys.readouterr().out
    labels = read_annotations(annotations_path)
    assert f"12 traces, 1,363 units: {len(labels.planning):,} planning-like" in printed
    preset = StrategicGrams.preset("paper")
    plan = sum(any(_contains(g, t) for g in preset) for t in labels.planning) / len(labels.planning)
    exe = sum(any(_contains(g, t) for g in preset) for t in labels.execution) / len(
        labels.execution
    )
    row = next(line.split() for line in printed.splitlines() if line.startswith("paper "))
    assert row[2:5] == [f"{plan:.3f}", f"{exe:.3f}", f"{plan - exe:.3f}"]
