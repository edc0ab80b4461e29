"""Strategic-gram mining: time and peak memory at 1k/5k/10k traces, and what it finds on real data.

Speed: synthetic rollouts.jsonl files of N successful traces of about 300 words (plus N/10 failed
ones, which are read and dropped), each trace four to six MATH test / GSM8K train solutions
(../shared/data/math) drawn at random, so traces share phrases the way samples of one policy do.
Every configuration runs in a fresh process (peak RSS is that process's, imports and model
included), with `--embedder none` and with the default all-MiniLM-L6-v2 embedder, the latter with
the default one embedding thread and with `--threads 0` (torch's default: every core; much slower
when other processes keep the cores busy).

Quality: the miner on the MATH test solutions (5,000) and on the GSM8K train solutions (7,473), with
the default parameters, with --sparsity, and with --ngram-min 1; top clusters, and precision/recall
against the paper's preset (definitions in hicra.mining.compare).

    python benchmarks/mining.py [--sizes 1000 5000 10000] [--part speed|quality|all]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "math"
MATH = DATA / "math" / "test.jsonl"
GSM8K = DATA / "gsm8k" / "train.jsonl"
TARGET_S = 60.0  # issue #4: 10k traces of a few hundred words, with the embedder, on 2 cores


def solutions() -> list[str]:
    texts = [json.loads(line)["solution"] for line in MATH.open(encoding="utf-8")]
    texts += [json.loads(line)["answer"] for line in GSM8K.open(encoding="utf-8")]
    return texts


def write_rollouts(path: Path, n: int, pool: list[str], seed: int = 0) -> int:
    """N successful traces of 4-6 random solutions, N/10 failed ones; returns the word count."""
    rng = random.Random(seed)
    words = 0
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n + n // 10):
            text = "\n\n".join(rng.sample(pool, rng.randint(4, 6)))
            correct = i % 11 != 10
            words += len(text.split()) if correct else 0
            row = {"step": i // 64 + 1, "group": i // 8, "prompt": "p", "completion": text,
                   "answer": "0", "reward": float(correct), "correct": correct}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    return words


CONFIGS = {  # label -> (embedder, torch threads while embedding)
    "none": ("none", 1),
    "minilm": ("minilm", 1),  # the default: one thread
    "minilm/all": ("minilm", None),  # --threads 0: torch's default, every core
}


def child(path: str, label: str) -> None:
    """One measured run (in its own process): mine, save, print a JSON line of figures."""
    from hicra.mining import MiningConfig, mine

    embedder, threads = CONFIGS[label]
    start = time.perf_counter()
    result = mine([path], MiningConfig(embedder=embedder, threads=threads), name="bench")
    result.grams.save(Path(path).with_suffix(".grams.json"))
    total = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": total,
                "peak_mb": peak_mb,
                "used": result.corpus.used,
                "candidates": result.candidates,
                "clusters": len(result.clusters),
                "grams": len(result.grams),
                "passes": result.passes,
                "timings": result.timings,
            }
        )
    )


def speed(sizes: list[int]) -> None:
    pool = solutions()
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    print("traces  words/trace   embedder  seconds  s/1k traces  peak RSS  candidates  clusters"
          "  grams  (phases)")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"rollouts-{n}.jsonl"
            words = write_rollouts(path, n, pool)
            for embedder in CONFIGS:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), embedder],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
                )
                fig = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append((n, embedder, fig))
                phases = ", ".join(f"{k} {v:.1f}" for k, v in fig["timings"].items())
                print(
                    f"{n:>6,}  {words / fig['used']:>11.0f}  {embedder:>9}  {fig['seconds']:>7.1f}"
                    f"  {1000 * fig['seconds'] / n:>11.2f}  {fig['peak_mb']:>5.0f} MB"
                    f"  {fig['candidates']:>10,}  {fig['clusters']:>8,}  {fig['grams']:>5,}"
                    f"  ({phases})"
                )
    for embedder in CONFIGS:
        times = {n: f["seconds"] for n, e, f in rows if e == embedder}
        lo, hi = min(times), max(times)
        print(
            f"scaling ({embedder}): {hi // lo}x the traces -> {times[hi] / times[lo]:.1f}x the time"
        )
    largest = max(sizes)
    for label in ("minilm", "minilm/all"):
        seconds = next(f["seconds"] for n, e, f in rows if n == largest and e == label)
        verdict = "meets" if seconds < TARGET_S else "MISSES"
        print(
            f"{largest:,} traces, embedder {label}: {seconds:.1f} s "
            f"({verdict} the {TARGET_S:.0f} s target)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


def quality() -> None:
    from hicra import StrategicGrams
    from hicra.mining import MiningConfig, compare_to_reference, mine
    from hicra.mining.clustering import load_embedder

    paper = StrategicGrams.preset("paper")
    paper_3_5 = [g for g in paper if 3 <= len(g.split()) <= 5]
    model = load_embedder("minilm")
    configs = {
        "default (n 3-5)": MiningConfig(),
        "--sparsity": MiningConfig(sparsity=True),
        "--ngram-min 1": MiningConfig(ngram_min=1),
    }
    table = []
    for corpus, path in (("MATH test solutions", MATH), ("GSM8K train solutions", GSM8K)):
        for label, config in configs.items():
            start = time.perf_counter()
            result = mine([path], config, model=model)
            seconds = time.perf_counter() - start
            print(
                f"\n== {corpus}, {label}: {result.corpus.used:,} traces, {result.candidates:,} "
                f"candidates (df >= {result.min_df}), {len(result.clusters):,} clusters, "
                f"{len(result.kept):,} kept, {len(result.grams):,} grams, {seconds:.1f} s"
            )
            for c in result.kept[:12]:
                share = 100 * c.df / result.corpus.used
                print(f"  {share:5.1f}%  x{c.mean_count:.2f}  {', '.join(c.grams[:4])}")
            full = compare_to_reference(result.grams, paper)
            mid = compare_to_reference(result.grams, paper_3_5)
            table.append((corpus, label, len(result.grams), full, mid))
            hits = sorted(set(result.grams) & set(paper))
            print(f"  exact matches with the paper's grams: {', '.join(hits) or 'none'}")
    print(
        f"\nagainst the paper's preset ({len(paper)} grams; {len(paper_3_5)} of 3-5 words), %:"
        "\ncorpus | config | grams | exact P | exact R | overlap P | overlap R | overlap R (3-5 words)"
    )
    for corpus, label, n, full, mid in table:
        print(
            f"{corpus} | {label} | {n} | {100 * full.exact_precision:.1f} | "
            f"{100 * full.exact_recall:.1f} | {100 * full.overlap_precision:.1f} | "
            f"{100 * full.overlap_recall:.1f} | {100 * mid.overlap_recall:.1f}"
        )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--part", choices=("speed", "quality", "all"), default="all")
    args = parser.parse_args()
    if args.part in ("speed", "all"):
        speed(sorted(args.sizes))
    if args.part in ("quality", "all"):
        quality()


if __name__ == "__main__":
    main()
