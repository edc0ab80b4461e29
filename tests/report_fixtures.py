"""Synthetic run folders in the format of docs/run-format.md, with known phase-change steps.

Curves follow the paper's picture: execution-token entropy falls linearly until `change`, then
stays flat; semantic entropy, accuracy and length are flat until `change`, then rise (faster with
HICRA). Noise is Gaussian, scaled by `noise`. Rollouts are real text whose planning spans come from
the real tagger with the paper's grams; phase one and phase two use different planning phrases so
the per-phase gram tables can be checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hicra import StrategicGrams
from hicra.tagging import GramMatcher

PHASE_ONE_PHRASES = ("First, we need to", "Let me verify", "We can use")
PHASE_TWO_PHRASES = ("Hold on, let me rethink this.", "Another approach:", "But wait,")
NASTY = (
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> '
    "<b>not bold</b> & \\frac{a}{b} < c, é ∑ 🙂. Let me verify </pre></article> that."
)

_MATCHER: GramMatcher | None = None


def matcher() -> GramMatcher:
    global _MATCHER
    if _MATCHER is None:
        _MATCHER = GramMatcher(StrategicGrams.preset("paper"))
    return _MATCHER


def curves(steps: int, change: int, credit: str, seed: int, noise: float) -> dict[str, np.ndarray]:
    """Metric curves over steps 1..steps with the phase change at `change`."""
    rng = np.random.default_rng(seed)
    x = np.arange(1, steps + 1, dtype=float)
    after = np.maximum(0.0, x - change)
    gain = 1.5 if credit == "hicra" else 1.0

    def jitter(scale: float) -> np.ndarray:
        return rng.normal(0.0, scale * noise, x.size)

    falling = np.where(x < change, 0.95 - 0.5 * (x - 1) / (change - 1), 0.45)
    accuracy = np.clip(0.32 + 0.004 * gain * after + jitter(0.015), 0, 1)
    return {
        "hicra/execution_entropy": falling + jitter(0.012),
        "hicra/planning_entropy": 1.6 + 0.002 * gain * after + jitter(0.03),
        "hicra/semantic_entropy": 3.0 + 0.012 * gain * after + jitter(0.02),
        "hicra/accuracy": accuracy,
        "reward": accuracy + 0.05 + jitter(0.005),
        "completions/mean_length": 420 + 3.0 * gain * after + jitter(6.0),
        "hicra/planning_ratio": 0.030 + 0.0001 * gain * after + jitter(0.001),
        "hicra/entropy": 0.9 * falling + 0.1 * 1.6 + jitter(0.01),
        "hicra/fork/planning_high_entropy_share": 0.6 + jitter(0.02),
        "hicra/fork/high_entropy_planning_share": 0.07 + jitter(0.005),
        "loss": 0.01 + jitter(0.002),
        "grad_norm": 0.5 + np.abs(jitter(0.1)),
    }


def completion_text(step: int, change: int, k: int, rng: np.random.Generator) -> str:
    phrases = PHASE_ONE_PHRASES if step < change else PHASE_TWO_PHRASES
    a, b = int(rng.integers(2, 50)), int(rng.integers(2, 50))
    return (
        f"{phrases[k % 3]} add {a} and {b}. So {a} + {b} = {a + b}. "
        f"{phrases[(k + 1) % 3]} the sum. The answer is \\boxed{{{a + b}}}."
    )


def rollout(step: int, group: int, text: str, correct: bool | None, spans: bool) -> dict:
    row = {
        "step": step,
        "group": group,
        "prompt": f"Problem {group} of step {step}: what is the sum? <i>(html in prompt)</i>",
        "completion": text,
        "answer": "42",
        "reward": 1.0 if correct else 0.0,
        "rewards": {"accuracy": 1.0 if correct else 0.0},
        "correct": correct,
        "advantage": 0.5 if correct else -0.5,
        "length": len(text.split()),
    }
    if spans:
        found = matcher().spans(text)
        row["planning_spans"] = [[s.start, s.end, s.gram] for s in found]
        row["planning_tokens"] = sum(len(text[s.start : s.end].split()) for s in found)
    return row


def make_run(
    folder: Path,
    *,
    credit: str = "hicra",
    alpha: float = 0.2,
    steps: int = 60,
    change: int = 25,
    seed: int = 0,
    noise: float = 1.0,
    hierarchy_metrics: bool = True,
    rollouts_per_step: int = 4,
    rollout_every: int = 5,
    eval_every: int = 10,
    truncated_tail: bool = False,
    nasty: bool = True,
    config: bool = True,
) -> Path:
    """Write config.yaml, metrics.jsonl and rollouts.jsonl of a synthetic run; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if config:
        (folder / "config.yaml").write_text(
            f"credit: {credit}\nhicra_alpha: {alpha}\nstrategic_grams: paper\n"
            f"model_name_or_path: tiny\noutput_dir: {folder}\nhicra_version: 0.1.0\n",
            encoding="utf-8",
        )
    values = curves(steps, change, credit, seed, noise)
    rng = np.random.default_rng(seed + 1)
    metric_lines, rollout_lines = [], []
    for i in range(steps):
        step = i + 1
        row: dict = {"step": step, "epoch": step / steps, "learning_rate": 1e-6}
        for key, series in values.items():
            if hierarchy_metrics or not key.startswith("hicra/"):
                row[key] = round(float(series[i]), 6)
        metric_lines.append(json.dumps(row))
        if eval_every and step % eval_every == 0:  # validation logs its own line for the step
            metric_lines.append(json.dumps({"step": step, "eval/accuracy": row["reward"]}))
        if rollout_every and (step == 1 or step % rollout_every == 0):
            p_correct = float(values["hicra/accuracy"][i])
            for k in range(rollouts_per_step):
                text = completion_text(step, change, k, rng)
                if nasty and step == 1 and k == 0:
                    text = NASTY
                correct = bool(k % 2 == 0) if k < 2 else bool(rng.random() < p_correct)
                if k == 3:
                    correct = None  # no answer extracted
                row_out = rollout(step, k // 2, text, correct, hierarchy_metrics)
                rollout_lines.append(json.dumps(row_out, ensure_ascii=False))
    metrics = "\n".join(metric_lines) + "\n"
    rollouts = "\n".join(rollout_lines) + "\n"
    if truncated_tail:  # a run killed mid-write: half a line, no newline
        metrics += json.dumps({"step": steps + 1, "reward": 0.9})[:15]
        rollouts += rollout_lines[-1][: len(rollout_lines[-1]) // 2]
    (folder / "metrics.jsonl").write_text(metrics, encoding="utf-8")
    if rollout_every:
        (folder / "rollouts.jsonl").write_text(rollouts, encoding="utf-8")
    return folder
