"""Strategic-gram mining: speed (new default vs the paper's pipeline), and quality on real traces.

Speed (`--part speed`): synthetic rollouts.jsonl files of N successful traces of about 300 words
(plus N/10 failed ones, which are read and dropped), each trace four to six MATH test / GSM8K
train solutions drawn at random, its `prompt` their problems, so that traces share phrases the
way samples of one policy do and have problem statements to contrast with. Every configuration
runs in a fresh process (peak RSS is that process's, imports and model included):

    contrastive   the default since issue #14 (no embedding model)
    paper         the paper's pipeline with all-MiniLM-L6-v2 on one thread: the default before #14
    paper/none    the paper's pipeline without a model

and the ratio contrastive / paper is printed for each size (the issue's bound: 2x at 10k traces).

Quality on real traces (`--part traces`): the development corpus of long chain-of-thought traces
(`reasoning-traces/`: 982 traces, 447 correct, 40 with sentence function tags, all of them
DeepSeek-R1 distills). Its traces are split by problem (SHA-256 of the problem text, first byte
even: development, odd: held out), so no problem is on both sides, and by model family: Sky-T1
(parameters tuned on its development side) and DeepSeek-R1-Distill (never tuned on). Mined on
each side, on the Sky-T1 development side and on the R1 traces: the new default, the default of
issue #14 (problems as the only contrast, 100 grams) and the paper's pipeline (MiniLM), beside
the paper's preset; precision/recall against the preset (hicra.mining.evaluation.reference) and the
planning-vs-execution hit-rate gap on the tagged sentences (hicra.mining.evaluation.labels) of all 40
traces and of each side's; the top 20 grams, and what the solution contrast removed.

With `--schoenfeld DIR` (a clone of github.com/MingLiiii/Schoenfeld_Reasoning at
e23e2bc; it has no licence file, so nothing of it is copied into hicra): a gap column on its
sentences labelled by people (Li et al. 2025, arXiv:2509.14662: 38 DeepSeek-R1 responses to SAT
items, Schoenfeld's episodes; planning-like Plan, Monitor, Verify; execution-like Read, Analyze,
Implement), and its 38 responses as one more corpus to mine ("r1-671b": the full DeepSeek-R1, a
model never tuned on).

The trade-off (`--part frontier`): can any variant of the selection meet issue 23's goals
(overlap precision >= 0.5 and recall >= 0.35 against the paper's list) on every corpus, and at
what cost in gap? Per variant and corpus: P/R at 110 grams, the set sizes (40-400) that meet
both, and the 110-gram set's gap on every tagged set.

Quality on textbook solutions (`--part textbook`): the MATH test and GSM8K train solutions, as
before #14, with the new default contrasted with their problems only (the bundled reference
solutions are drawn from these very files) and the paper's pipeline.

    python benchmarks/mining.py [--part speed|traces|frontier|textbook|all]
                                [--sizes 1000 5000 10000] [--data ../shared/data]
                                [--schoenfeld Schoenfeld_Reasoning]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPEED_BOUND = 2.0  # issue #14: the new default within 2x of the paper's pipeline at 10k traces


def pairs(data: Path) -> list[tuple[str, str]]:
    """(problem, solution) of the MATH test set and the GSM8K train set."""
    math = data / "math" / "math" / "test.jsonl"
    gsm8k = data / "math" / "gsm8k" / "train.jsonl"
    rows = [json.loads(line) for line in math.open(encoding="utf-8")]
    found = [(r["problem"], r["solution"]) for r in rows]
    rows = [json.loads(line) for line in gsm8k.open(encoding="utf-8")]
    return found + [(r["question"], r["answer"]) for r in rows]


def write_rollouts(path: Path, n: int, pool: list[tuple[str, str]], seed: int = 0) -> int:
    """N successful traces of 4-6 random solutions, N/10 failed ones; returns the word count."""
    rng = random.Random(seed)
    words = 0
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n + n // 10):
            drawn = rng.sample(pool, rng.randint(4, 6))
            text = "\n\n".join(s for _, s in drawn)
            correct = i % 11 != 10
            words += len(text.split()) if correct else 0
            row = {"step": i // 64 + 1, "group": i // 8, "prompt": "\n\n".join(p for p, _ in drawn),
                   "completion": text, "answer": "0", "reward": float(correct),
                   "correct": correct}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    return words


CONFIGS = {  # label -> MiningConfig keyword arguments
    "contrastive": {},
    "paper": {"selection": "paper", "embedder": "minilm", "threads": 1},
    "paper/none": {"selection": "paper", "embedder": "none"},
}


def child(path: str, label: str) -> None:
    """One measured run (in its own process): mine, save, print a JSON line of figures."""
    from hicra.mining import MiningConfig, mine

    start = time.perf_counter()
    result = mine([path], MiningConfig(**CONFIGS[label]), name="bench")
    result.grams.save(Path(path).with_suffix(f".{label.replace('/', '-')}.json"))
    total = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"seconds": total, "peak_mb": peak_mb, "used": result.corpus.used,
               "candidates": result.candidates, "grams": len(result.grams),
               "passes": result.passes, "timings": result.timings}  # fmt: skip
    print(json.dumps(figures))


def speed(sizes: list[int], data: Path) -> None:
    pool = pairs(data)
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    print("traces  words/trace       config  seconds  s/1k traces  peak RSS  candidates  grams"
          "  (phases)")  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"rollouts-{n}.jsonl"
            words = write_rollouts(path, n, pool)
            for label in CONFIGS:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), label],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
                )
                fig = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append((n, label, fig))
                phases = ", ".join(f"{k} {v:.1f}" for k, v in fig["timings"].items())
                print(
                    f"{n:>6,}  {words / fig['used']:>11.0f}  {label:>11}  {fig['seconds']:>7.1f}"
                    f"  {1000 * fig['seconds'] / n:>11.2f}  {fig['peak_mb']:>5.0f} MB"
                    f"  {fig['candidates']:>10,}  {fig['grams']:>5,}  ({phases})"
                )
    seconds = {(n, label): fig["seconds"] for n, label, fig in rows}
    for n in sizes:
        ratio = seconds[n, "contrastive"] / seconds[n, "paper"]
        print(f"{n:,} traces: contrastive / paper (MiniLM) = {ratio:.2f}x")
    largest = max(sizes)
    ratio = seconds[largest, "contrastive"] / seconds[largest, "paper"]
    verdict = "within" if ratio <= SPEED_BOUND else "OUTSIDE"
    print(f"{largest:,} traces: {ratio:.2f}x, {verdict} the {SPEED_BOUND:.0f}x bound")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


# ---------------------------------------------------------------- real traces
def side(problem: str) -> str:
    """The split: development or held out, by the problem text's hash (never both)."""
    return "dev" if hashlib.sha256(problem.strip().encode()).digest()[0] % 2 == 0 else "held"


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


FAMILIES = {  # model family -> a test on the trace's `model` field
    "sky": lambda model: model.startswith("Sky-T1"),  # Qwen2.5-32B students of QwQ: tuned on
    "r1": lambda model: model.startswith("DeepSeek-R1-Distill"),  # never tuned on
}
MINED_ON = {  # corpus -> which correct traces are mined
    "dev": lambda r: side(r["problem"]) == "dev",
    "held": lambda r: side(r["problem"]) == "held",
    "sky-dev": lambda r: FAMILIES["sky"](r["model"]) and side(r["problem"]) == "dev",
    "r1": lambda r: FAMILIES["r1"](r["model"]),
}
SELECTIONS = {  # label -> MiningConfig keyword arguments
    "new default": {},
    "problems only (#14)": {"contrast": ("problems",), "rules": "issue-14"},
    "paper pipeline": {"selection": "paper"},
}


def _config(label: str):
    from hicra.mining import MiningConfig, SelectionRules

    kwargs = dict(SELECTIONS[label])
    if kwargs.get("rules") == "issue-14":  # the default of issue #14: 100 grams
        kwargs["rules"] = SelectionRules(max_grams=100)
    return MiningConfig(**kwargs)


# ------------------------------------------------ human sentence labels (Li et al. 2025)
SCHOENFELD_COMMIT = "e23e2bc94e2c91d25280abc4bb5c097fe658e81a"  # MingLiiii/Schoenfeld_Reasoning
SCHOENFELD_PLANNING = ("Plan", "Monitor", "Verify")  # the planning/monitoring/verifying
SCHOENFELD_EXECUTION = ("Read", "Analyze", "Implement")  # reading/analysing/implementing
_LETTER = re.compile(r"(?i:answer)(?: is)?\W{0,8}\(?([A-D])\)|^\W{0,4}([A-D])\)", re.MULTILINE)
_FRACTION = re.compile(r"\\d?frac\{(-?\d+)\}\{(\d+)\}")


def sat_correct(response: str, gold: str) -> bool:
    """An SAT response's final answer (after </think>) against the item's gold ("B", ".2, 1/5")."""
    from hicra.answers import extract_answer, strict_equal

    tail = response.split("</think>")[-1]
    letter = _LETTER.search(tail)  # "The correct answer is **B) ...", "**Answer:** A)", "**B) ..."
    answer = (letter.group(1) or letter.group(2)) if letter else extract_answer(tail)
    if answer is None:
        return False
    answer = _FRACTION.sub(r"\1/\2", answer)
    return any(strict_equal(answer, g.strip()) for g in gold.split(","))


def schoenfeld(folder: Path, out: Path) -> tuple[Path, Path, int]:
    """The human-labelled corpus of Li et al. (2025, arXiv:2509.14662), from a clone of
    github.com/MingLiiii/Schoenfeld_Reasoning (no licence file: read from the user's clone, never
    copied into hicra): 38 DeepSeek-R1 (671B) responses to SAT math items, their sentences
    labelled by people with Schoenfeld's episodes. Returns the annotations as `hicra mine
    --evaluate` reads them, the responses as traces (`correct` graded here) and the correct count."""
    needed = [
        folder / "responses_labeled",
        folder / "responses_original" / "SAT_deepseekR1_results.json",
    ]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        sys.exit(f"--schoenfeld {folder}: not a clone of MingLiiii/Schoenfeld_Reasoning "
                 f"(missing {', '.join(missing)})")  # fmt: skip
    units = []
    for path in sorted((folder / "responses_labeled").glob("*.json"), key=lambda f: int(f.stem)):
        item = json.loads(path.read_text("utf-8"))
        units.append({"id": f"sat-{item['Question ID']}", "units": [
            {"text": u["text"], "labels": [u["gt-class-2"]]} for u in item["data"] if u.get("gt-class-2")
        ]})  # fmt: skip
    results = json.loads(
        (folder / "responses_original" / "SAT_deepseekR1_results.json").read_text()
    )
    rows = [{"problem": r["Instruction"], "completion": r["deepseek-reasoner (response)"],
             "correct": sat_correct(r["deepseek-reasoner (response)"], r["Correct Answer"]),
             "model": "DeepSeek-R1", "dataset": "SAT"} for r in results]  # fmt: skip
    annotations = _write(out / "schoenfeld-annotations.jsonl", units)
    return annotations, _write(out / "r1-671b.jsonl", rows), sum(r["correct"] for r in rows)


TAGGED = ("all", "dev", "held", "human")  # the labelled sets, in column order


def _tagged_sets(data: Path, folder: Path, human: Path | None) -> tuple[dict, list[dict]]:
    """The tagged units (LLM labels: all 40 traces, dev side, held side; human labels when given)
    and every trace row."""
    from hicra.mining.evaluation.labels import read_annotations

    corpus = data / "reasoning-traces"
    rows = _rows(corpus / "traces.jsonl.gz")
    annotations = _rows(corpus / "annotations.jsonl.gz")
    by_id = {r["id"]: r for r in rows}
    labels = {
        p: read_annotations(_write(folder / f"ann-{p}.jsonl", [
            a for a in annotations if p == "all" or side(by_id[a["id"]]["problem"]) == p
        ]))
        for p in ("dev", "held", "all")
    }  # fmt: skip
    if human is not None:
        labels["human"] = read_annotations(human, SCHOENFELD_PLANNING, SCHOENFELD_EXECUTION)
    return labels, rows


def _corpora(rows: list[dict], folder: Path, r1_671b: Path | None) -> dict[str, Path]:
    """Mined-on corpus -> its JSONL file."""
    found = {on: _write(folder / f"{on}.jsonl", [r for r in rows if take(r)])
             for on, take in MINED_ON.items()}  # fmt: skip
    if r1_671b is not None:
        found["r1-671b"] = r1_671b
    return found


def _gap_cells(grams, labels: dict) -> str:
    from hicra.mining.evaluation.labels import hit_rates

    cells = []
    for q in TAGGED:
        if q in labels:
            g = hit_rates(grams, labels[q])
            cells.append(f"{g.gap:.3f} ({g.planning_rate:.2f} - {g.execution_rate:.2f})")
    return " | ".join(cells)


def _gap_header(labels: dict) -> str:
    names = {"all": "gap, 40 LLM-tagged", "dev": "gap, dev tagged", "held": "gap, held tagged",
             "human": "gap, human-labelled (38)"}  # fmt: skip
    return " | ".join(names[q] for q in TAGGED if q in labels)


def traces(data: Path, human_folder: Path | None) -> None:
    from hicra import StrategicGrams
    from hicra.mining import compare_to_reference, mine
    from hicra.mining.paper.clustering import load_embedder

    paper = StrategicGrams.preset("paper")
    model = load_embedder("minilm")
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        human, r1_671b = None, None
        if human_folder is not None:
            human, r1_671b, correct = schoenfeld(human_folder, folder)
            print(f"human labels: {human_folder} (MingLiiii/Schoenfeld_Reasoning), "
                  f"{correct} of 38 DeepSeek-R1 responses correct")  # fmt: skip
        labels, rows = _tagged_sets(data, folder, human)
        for p, label in labels.items():
            print(f"tagged {p}: {label.traces} traces, {len(label.planning)} planning-like and "
                  f"{len(label.execution)} execution-like units")  # fmt: skip
        sets = {}
        for on, path in _corpora(rows, folder, r1_671b).items():
            part = [json.loads(line) for line in path.open(encoding="utf-8")]
            correct = sum(bool(r["correct"]) for r in part)
            problems = len({r["problem"] for r in part})
            print(f"mined on {on}: {correct} correct traces of {problems} problems")
            for label in SELECTIONS:
                start = time.perf_counter()
                extra = {"model": model} if label == "paper pipeline" else {}
                sets[on, label] = mine([path], _config(label), **extra).grams
                print(f"  {label}: {time.perf_counter() - start:.1f} s")
        print(f"\nmined on | set | grams | exact P | exact R | overlap P | overlap R | "
              f"{_gap_header(labels)}")  # fmt: skip
        mined_on = list(dict.fromkeys(on for on, _ in sets))
        rows_out = [("-", "paper preset", paper)] + [
            (on, label, sets[on, label]) for on in mined_on for label in SELECTIONS
        ]
        for on, label, grams in rows_out:
            c = compare_to_reference(grams, paper)
            print(f"{on} | {label} | {len(grams)} | {c.exact_precision:.2f} | "
                  f"{c.exact_recall:.2f} | {c.overlap_precision:.2f} | "
                  f"{c.overlap_recall:.2f} | {_gap_cells(grams, labels)}")  # fmt: skip
        for on in mined_on:
            for label in ("new default", "problems only (#14)"):
                top = ", ".join(f"`{g}`" for g in list(sets[on, label])[:20])
                print(f"\ntop 20, {label}, mined on {on}: {top}")
            removed = [
                g for g in sets[on, "problems only (#14)"] if g not in sets[on, "new default"]
            ]
            print(f"\nin the #14 set, not in the new default, mined on {on}: {', '.join(removed)}")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


# ---------------------------------------------------------------- the trade-off frontier
_MATH_1 = {"max_math_log_odds": 1.0}
FRONTIER = {  # label -> MiningConfig keyword arguments (rules: SelectionRules keyword arguments)
    "default": {},
    "math-bound 1.0": {"rules": _MATH_1},
    "solution floor -1": {"rules": {"solution_floor": -1.0}},
    "solution floor -1, math-bound 1.0": {"rules": {"solution_floor": -1.0, **_MATH_1}},
    "problems only": {"contrast": ("problems",)},
    "problems only, math-bound 1.0": {"contrast": ("problems",), "rules": _MATH_1},
    "problems only, no math-bound": {
        "contrast": ("problems",),
        "rules": {"max_math_log_odds": 99.0},
    },
    "any single word": {"rules": {"min_opening_share": 0.0}},
}
FRONTIER_SIZES = tuple(range(40, 401, 10))


def frontier(data: Path, human_folder: Path | None) -> None:
    """Can any variant meet issue 23's goals on every corpus? Per variant and mined-on corpus:
    precision/recall against the paper's list at the default 110 grams, the set sizes (40-400)
    where both goals hold, and the 110-gram set's gap on each tagged set."""
    from hicra import StrategicGrams
    from hicra.mining import MiningConfig, SelectionRules, compare_to_reference, mine

    paper = StrategicGrams.preset("paper")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        human, r1_671b = schoenfeld(human_folder, folder)[:2] if human_folder else (None, None)
        labels, rows = _tagged_sets(data, folder, human)
        corpora = _corpora(rows, folder, r1_671b)
        print("paper's list: " + _gap_cells(paper, labels))
        print(f"variant | mined on | P@110 | R@110 | sizes meeting P >= 0.5 and R >= 0.35 | "
              f"{_gap_header(labels)}")  # fmt: skip
        for variant, kwargs in FRONTIER.items():
            rules = SelectionRules(**kwargs.get("rules", {}), max_grams=max(FRONTIER_SIZES))
            config = MiningConfig(**{**kwargs, "rules": rules})
            for on, path in corpora.items():
                ranked = list(mine([path], config).grams)
                meets = []
                for n in FRONTIER_SIZES:
                    c = compare_to_reference(ranked[:n], paper)
                    if c.overlap_precision >= 0.5 and c.overlap_recall >= 0.35:
                        meets.append(n)
                at = StrategicGrams(ranked[:110], name=variant)
                c = compare_to_reference(at, paper)
                span = f"{meets[0]}-{meets[-1]}" if meets else "none"
                print(f"{variant} | {on} | {c.overlap_precision:.2f} | {c.overlap_recall:.2f} | "
                      f"{span} | {_gap_cells(at, labels)}", flush=True)  # fmt: skip


# ---------------------------------------------------------------- textbook solutions
def textbook(data: Path) -> None:
    from hicra import StrategicGrams
    from hicra.mining import MiningConfig, compare_to_reference, mine
    from hicra.mining.paper.clustering import load_embedder

    paper = StrategicGrams.preset("paper")
    model = load_embedder("minilm")
    files = {"MATH test": data / "math" / "math" / "test.jsonl",
             "GSM8K train": data / "math" / "gsm8k" / "train.jsonl"}  # fmt: skip
    print("corpus | selection | grams | exact P | exact R | overlap P | overlap R | top 10")
    for corpus, path in files.items():
        for label in ("new default", "paper pipeline"):
            if label == "new default":  # the bundled solutions hold a quarter of GSM8K train
                result = mine([path], MiningConfig(contrast=("problems",)))
            else:
                result = mine([path], MiningConfig(selection="paper"), model=model)
            c = compare_to_reference(result.grams, paper)
            top = ", ".join(list(result.grams)[:10])
            print(f"{corpus} | {label} | {len(result.grams)} | {c.exact_precision:.3f} | "
                  f"{c.exact_recall:.3f} | {c.overlap_precision:.3f} | {c.overlap_recall:.3f} | "
                  f"{top}")  # fmt: skip


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--part", choices=("speed", "traces", "frontier", "textbook", "all"),
                        default="all")  # fmt: skip
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--schoenfeld", type=Path, default=None,
                        help="a clone of github.com/MingLiiii/Schoenfeld_Reasoning: human sentence "
                        "labels and DeepSeek-R1 traces (columns and rows added when given)")  # fmt: skip
    args = parser.parse_args()
    if args.part in ("speed", "all"):
        speed(sorted(args.sizes), args.data)
    if args.part in ("traces", "all"):
        traces(args.data, args.schoenfeld)
    if args.part in ("frontier", "all"):
        frontier(args.data, args.schoenfeld)
    if args.part in ("textbook", "all"):
        textbook(args.data)


if __name__ == "__main__":
    main()
