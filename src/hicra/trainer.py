"""HICRA on top of TRL: a config with three extra fields and a trainer that changes one thing.

`HICRATrainer` lets TRL's `GRPOTrainer` generate, score and compute group advantages as usual, then
turns the (B,) advantages into (B, T) ones with `hicra_advantages` (planning tokens get A + alpha|A|).
TRL's loss accepts (B, T) advantages, so every loss type, `num_iterations`, gradient accumulation,
vLLM and multi-process training keep working unchanged. With `credit="grpo"` the advantages are
left as TRL made them: training is exactly TRL's GRPO. The hierarchy metrics are logged either way.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate.utils import gather_object
from transformers.trainer_callback import ProgressCallback
from trl import GRPOConfig, GRPOTrainer

from hicra import __version__
from hicra.advantages import (
    hicra_advantages,
    hicra_entropy_length_advantages,
    high_entropy_advantages,
)
from hicra.callbacks import CompactProgressCallback, MetricsCallback
from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.metrics import fork_overlap, semantic_entropy, token_entropy_by_class
from hicra.reward_funcs import AccuracyReward, completion_text
from hicra.run_log import RunLog, checkpoint_step, last_complete_checkpoint
from hicra.tagging import PlanningTagger

CREDITS = ("grpo", "hicra", "high_entropy", "hicra_entropy_length")

# TRL's configs still set transformers' deprecated `gradient_checkpointing` alias; users cannot act
# on these warnings, so they are not shown.
warnings.filterwarnings(
    "ignore", message=r".*gradient_checkpointing` is deprecated", category=FutureWarning
)


@dataclass
class HICRAConfig(GRPOConfig):
    """TRL's GRPOConfig plus hierarchy-aware credit assignment (arXiv 2509.03646)."""

    credit: str = field(
        default="hicra",
        metadata={
            "help": "Credit assignment: 'hicra' (planning tokens get A + alpha*|A|), 'grpo' (TRL's GRPO "
            "unchanged), 'high_entropy' (the paper's ablation: HICRA's rule on the top-30%%-entropy "
            "tokens), 'hicra_entropy_length' (HICRA plus the heuristics reported from the official code).",
            "choices": list(CREDITS),
        },
    )
    hicra_alpha: float = field(
        default=0.2,
        metadata={
            "help": "HICRA's alpha in [0, 1); 0.2 in every experiment of the paper.",
            "aliases": ["--alpha"],
        },
    )
    strategic_grams: str = field(
        default="paper",
        metadata={
            "help": "Strategic grams that define planning tokens: a preset ('paper') or a grams file.",
            "aliases": ["--grams"],
        },
    )
    hierarchy_metrics: bool = field(
        default=True,
        metadata={"help": "Log planning/execution entropies, semantic entropy and fork overlap."},
    )
    fork_quantile: float = field(
        default=0.7,
        metadata={
            "help": "Entropy quantile above which a token counts as high-entropy (0.7: top 30%%)."
        },
    )
    rollouts_per_step: int = field(
        default=2,
        metadata={"help": "Prompt groups per generation written to rollouts.jsonl (0: none)."},
    )
    epsilon_high: float | None = field(
        default=0.28,
        metadata={"help": "Upper clip bound (DAPO's clip-higher, as the paper's baseline)."},
    )

    def __post_init__(self) -> None:
        if self.bf16 is None and not torch.cuda.is_available():
            self.bf16 = False  # TRL defaults to bf16, which a CPU-only machine rejects
        super().__post_init__()
        if self.credit not in CREDITS:
            raise HicraError(f"credit must be one of {', '.join(CREDITS)}, got {self.credit!r}")
        if not 0.0 <= self.hicra_alpha < 1.0:
            raise HicraError(f"hicra_alpha must be in [0, 1), got {self.hicra_alpha}")
        if not 0.0 <= self.fork_quantile < 1.0:
            raise HicraError(f"fork_quantile must be in [0, 1), got {self.fork_quantile}")

    def to_replayable_dict(self) -> dict[str, Any]:
        """`to_dict()` without the values __post_init__ derives, so HICRAConfig(**d) rebuilds it."""
        data = self.to_dict()
        data.pop("generation_batch_size", None)  # derived from steps_per_generation
        data.pop("hub_token", None)
        return data


def check_whole_groups(per_device_batch: int, steps_per_generation: int, group: int) -> None:
    """credit='hicra_entropy_length' compares completions of a prompt group on one process, so
    every process must hold whole groups (TRL lets a group straddle two processes otherwise)."""
    local = per_device_batch * steps_per_generation
    if local % group:
        raise HicraError(
            "credit='hicra_entropy_length' compares completions within a prompt group on each "
            f"process: per_device_train_batch_size x steps_per_generation ({local}) must be a "
            f"multiple of num_generations ({group})"
        )


def _user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    for message in reversed(prompt or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content", "")
            return content if isinstance(content, str) else str(content)
    return str(prompt)


class HICRATrainer(GRPOTrainer):
    """TRL's GRPOTrainer with hierarchy-aware credit assignment and hierarchy metrics.

    Writes `metrics.jsonl`, `rollouts.jsonl` and `config.yaml` into `args.output_dir`.
    `run_config` adds fields (model, dataset, ...) to config.yaml.
    """

    def __init__(
        self,
        *args: Any,
        strategic_grams: StrategicGrams | str | None = None,
        run_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, HICRAConfig):
            raise HicraError(
                "HICRATrainer needs an HICRAConfig (a GRPOConfig with the HICRA fields)"
            )
        self.grams = StrategicGrams.resolve(strategic_grams or self.args.strategic_grams)
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        self.tagger = PlanningTagger(self.grams, tokenizer)
        self.run_log = RunLog(self.args.output_dir, is_main=self.accelerator.is_main_process)
        self._run_config = dict(run_config or {})
        self._window = torch.zeros(7, dtype=torch.float64)  # loss-time sums of one optimizer step
        self._accuracy = next((f for f in self.reward_funcs if isinstance(f, AccuracyReward)), None)
        if self.args.credit == "hicra_entropy_length":
            check_whole_groups(
                self.args.per_device_train_batch_size,
                self.args.steps_per_generation,
                self.num_generations,
            )
        self._last_entropies: torch.Tensor | None = None
        self.add_callback(MetricsCallback(self.run_log))
        if any(isinstance(cb, ProgressCallback) for cb in self.callback_handler.callbacks):
            self.remove_callback(ProgressCallback)
            self.add_callback(CompactProgressCallback())

    # ------------------------------------------------------------------ training entry
    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """Resume cuts the logs back to the checkpoint's step; a fresh run keeps old logs aside."""
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            main = self.accelerator.is_main_process
            found = last_complete_checkpoint(self.args.output_dir, remove_incomplete=main)
            checkpoint = str(found) if found is not None else None
            if checkpoint is None:
                raise HicraError(
                    f"nothing to resume: no complete checkpoint in {self.args.output_dir}"
                )
        if checkpoint:
            step = checkpoint_step(str(checkpoint).rstrip("/"))
            if step is None:
                raise HicraError(f"{checkpoint} is not a checkpoint-N folder of a run")
            self.run_log.truncate_after(step)
        elif self.run_log.has_logs():
            self.run_log.set_aside()
        self.run_log.write_config(self._config_record())
        return super().train(resume_from_checkpoint=checkpoint, **kwargs)

    def _config_record(self) -> dict[str, Any]:
        model_id = getattr(getattr(self.model, "config", None), "_name_or_path", None)
        record = {"hicra_version": __version__, "model_name_or_path": model_id}
        record.update(self._run_config)
        args = self.args.to_replayable_dict()
        record.update({k: v for k, v in args.items() if k not in record})
        record["strategic_grams_resolved"] = {"name": self.grams.name, "count": len(self.grams)}
        return record

    # ------------------------------------------------------------------ credit assignment
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        real = out["completion_mask"].bool()
        if "tool_mask" in out:  # tool outputs are not the model's tokens
            real = real & out["tool_mask"].bool()
        counts: Counter[str] = Counter()
        planning = self.tagger.token_mask(
            out["completion_ids"], real, gram_counts=counts, strict=False
        )
        planning = planning.to(real.device)
        sequence_advantages = out["advantages"]
        out["planning_mask"] = planning
        out["sequence_advantages"] = sequence_advantages
        out["advantages"] = self._assign_credit(sequence_advantages, planning, real, out, mode)
        if self.args.hierarchy_metrics:
            self._log_generation_metrics(mode, out["advantages"], planning, real, counts)
        if mode == "train" and self.args.rollouts_per_step > 0:
            self._log_rollouts(inputs, planning, real)
        return out

    def _assign_credit(
        self,
        advantages: torch.Tensor,
        planning: torch.Tensor,
        real: torch.Tensor,
        out: dict,
        mode: str,
    ) -> torch.Tensor:
        credit, alpha = self.args.credit, self.args.hicra_alpha
        if credit == "grpo":
            return advantages
        if credit == "hicra":
            return hicra_advantages(advantages, planning, alpha)
        entropies = self._generation_entropies(out, mode)
        if credit == "high_entropy":
            return high_entropy_advantages(
                advantages, entropies, real, alpha, self.args.fork_quantile
            )
        correct = self._local_correct(advantages.shape[0]).to(advantages.device)
        return hicra_entropy_length_advantages(
            advantages,
            planning,
            entropies,
            real,
            correct,
            self.num_generations if mode == "train" else self.num_generations_eval,
            alpha,
            self.args.fork_quantile,
        )

    def _generation_entropies(self, out: dict, mode: str) -> torch.Tensor:
        """Per-token entropies of the policy that sampled the batch (one extra no-grad forward)."""
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
        with torch.no_grad():
            _, entropies, _ = super()._get_per_token_logps_and_entropies(
                self.model,
                ids,
                mask,
                out["completion_ids"].size(1),
                batch_size=self.args.per_device_train_batch_size
                if mode == "train"
                else self.args.per_device_eval_batch_size,
                compute_entropy=True,
            )
        return entropies

    def _local_correct(self, local_size: int) -> torch.Tensor:
        """Whether each local completion is correct: its accuracy reward is 1 (or, with custom
        reward functions only, its total reward is positive)."""
        if self._accuracy is not None:
            return torch.tensor(self._accuracy.last_scores) >= 1.0
        total = local_size * self.accelerator.num_processes
        stacked = torch.tensor([list(v)[-total:] for v in self._logs["rewards"].values()])
        values = (stacked * self.reward_weights.cpu().unsqueeze(1)).nansum(0) > 0
        start = self.accelerator.process_index * local_size
        return values[start : start + local_size]

    # ------------------------------------------------------------------ metrics
    def _reduce(self, values: list[float], kind: str) -> list[float]:
        """Sum over processes: means are built from global sums and counts (token-weighted).

        `kind` ("generation" or "loss") names the statistics, for anyone who wraps this method.
        """
        local = torch.tensor(values, dtype=torch.float64, device=self.accelerator.device)
        return self.accelerator.reduce(local, reduction="sum").tolist()

    def _log_generation_metrics(
        self,
        mode: str,
        advantages: torch.Tensor,
        planning: torch.Tensor,
        real: torch.Tensor,
        counts: Counter[str],
    ) -> None:
        token_adv = advantages if advantages.dim() == 2 else advantages.unsqueeze(1).expand_as(real)
        token_adv = token_adv.detach().float()
        execution = real & ~planning
        counts_of = self._accuracy.pop_counts() if self._accuracy is not None else {}
        scores = self._accuracy.last_scores if self._accuracy is not None else []
        n_plan, n_exec, adv_plan, adv_exec, correct, scored, timeouts, errors = self._reduce(
            [
                float(planning.sum()),
                float(execution.sum()),
                float(token_adv[planning].sum()),
                float(token_adv[execution].sum()),
                float(sum(scores)),
                float(len(scores)),
                float(counts_of.get("verify_timeouts", 0)),
                float(counts_of.get("scorer_errors", 0)),
            ],
            kind="generation",
        )
        merged: Counter[str] = Counter()
        for part in gather_object([dict(counts)]):
            merged.update(part)
        metrics = self._metrics[mode]
        metrics["hicra/planning_ratio"].append(_ratio(n_plan, n_plan + n_exec))
        metrics["hicra/planning_advantage"].append(_ratio(adv_plan, n_plan))
        metrics["hicra/execution_advantage"].append(_ratio(adv_exec, n_exec))
        metrics["hicra/semantic_entropy"].append(semantic_entropy(merged))
        metrics["hicra/distinct_grams"].append(float(len(merged)))
        if self._accuracy is not None:
            metrics["hicra/accuracy"].append(_ratio(correct, scored))
            metrics["hicra/verify_timeouts"].append(timeouts)
            metrics["hicra/scorer_errors"].append(errors)

    def _get_per_token_logps_and_entropies(self, *args: Any, **kwargs: Any):
        logps, entropies, aux = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if kwargs.get("compute_entropy"):
            self._last_entropies = entropies
        return logps, entropies, aux

    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        self._last_entropies = None
        loss = super()._compute_loss(model, inputs)
        if self.args.hierarchy_metrics and self._last_entropies is not None:
            self._accumulate_entropy_metrics(inputs, self._last_entropies.detach())
        return loss

    def _accumulate_entropy_metrics(self, inputs: dict[str, Any], entropies: torch.Tensor) -> None:
        """Sum entropy statistics over an optimizer step's micro-batches, then log them once."""
        real = inputs["completion_mask"].bool()
        if "tool_mask" in inputs:
            real = real & inputs["tool_mask"].bool()
        split = token_entropy_by_class(entropies, inputs["planning_mask"], real)
        fork = fork_overlap(entropies, inputs["planning_mask"], real, self.args.fork_quantile)
        self._window += torch.tensor(
            [
                split.planning_sum,
                split.planning_tokens,
                split.execution_sum,
                split.execution_tokens,
                fork.both,
                fork.planning_tokens,
                fork.high_entropy_tokens,
            ],
            dtype=torch.float64,
        )
        mode = "train" if self.model.training else "eval"
        if mode == "train" and not self.accelerator.sync_gradients:
            return
        p_sum, p_n, e_sum, e_n, both, fork_plan, fork_high = self._reduce(
            self._window.tolist(), kind="loss"
        )
        self._window.zero_()
        metrics = self._metrics[mode]
        metrics["hicra/planning_entropy"].append(_ratio(p_sum, p_n))
        metrics["hicra/execution_entropy"].append(_ratio(e_sum, e_n))
        metrics["hicra/entropy"].append(_ratio(p_sum + e_sum, p_n + e_n))
        metrics["hicra/fork/planning_high_entropy_share"].append(_ratio(both, fork_plan))
        metrics["hicra/fork/high_entropy_planning_share"].append(_ratio(both, fork_high))

    # ------------------------------------------------------------------ rollouts
    def _log_rollouts(
        self,
        inputs: list[dict[str, Any]],
        planning: torch.Tensor,
        real: torch.Tensor,
    ) -> None:
        """A few whole prompt groups per generation, with rewards and planning spans."""
        lengths = self.accelerator.gather(real.sum(dim=1)).tolist()
        plan_counts = self.accelerator.gather(planning.sum(dim=1)).tolist()
        answers = gather_object([x.get("answer") for x in inputs])
        if not self.accelerator.is_main_process:
            return
        total = len(lengths)
        group = self.num_generations
        keep = min(total, self.args.rollouts_per_step * group)
        prompts = list(self._logs["prompt"])[-total:][:keep]
        completions = list(self._logs["completion"])[-total:][:keep]
        seq_adv = list(self._logs["advantages"])[-total:][:keep]
        reward_names = list(self._logs["rewards"])
        per_func = {n: list(self._logs["rewards"][n])[-total:][:keep] for n in reward_names}
        weights = self.reward_weights.tolist()
        step = self.state.global_step + 1
        rows = []
        for i in range(keep):
            text = completion_text(completions[i])
            rewards = {n: per_func[n][i] for n in reward_names}
            accuracy = rewards.get("accuracy")
            rows.append(
                {
                    "step": step,
                    "group": i // group,
                    "prompt": _user_text(prompts[i]),
                    "completion": text,
                    "answer": answers[i],
                    "reward": sum(
                        w * (v if v == v else 0.0)
                        for w, v in zip(weights, rewards.values(), strict=True)
                    ),
                    "rewards": rewards,
                    "correct": None if accuracy is None else bool(accuracy >= 1.0),
                    "advantage": seq_adv[i],
                    "planning_spans": [list(s) for s in self.tagger.spans(text)],
                    "length": int(lengths[i]),
                    "planning_tokens": int(plan_counts[i]),
                }
            )
        self.run_log.log_rollouts(rows)


def _ratio(total: float, count: float) -> float:
    return total / count if count else float("nan")
