"""HICRA on top of TRL: a trainer that changes one thing, the advantages, and logs the lens.

`HICRATrainer` lets TRL's `GRPOTrainer` generate, score and compute group advantages as usual, then
hands them to the registered credit rule (`hicra.advantages.CREDITS`, chosen by `args.credit`):
`hicra` turns the (B,) advantages into (B, T) ones where planning tokens get A + alpha*|A|. TRL's
loss accepts (B, T) advantages as they are, so every loss type, `num_iterations`, gradient
accumulation, vLLM and multi-process training keep working. Which combinations are meaningful:
token-level credits need token-level importance sampling (`importance_sampling_level="token"`,
TRL's default); with "sequence" (GSPO, LUSPO) every token of a response carries the mean
advantage, so `HICRAConfig` refuses that combination. With `credit="grpo"` the advantages are
left as TRL made them: training is exactly TRL's GRPO. The hierarchy metrics are logged either way.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from transformers.trainer_callback import ProgressCallback
from trl import GRPOTrainer

from hicra import __version__
from hicra.advantages import CreditBatch, get_credit
from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.hierarchy import (
    batch_quantile,
    fork_overlap,
    semantic_entropy,
    semantic_entropy_miller_madow,
    token_entropy_by_class,
)
from hicra.prompts import PromptStyle
from hicra.run_folder import (
    Metric,
    RolloutField,
    RunLog,
    checkpoint_step,
    last_complete_checkpoint,
)
from hicra.tagging import PlanningTagger
from hicra.train import placebo
from hicra.train.callbacks import CompactProgressCallback, MetricsCallback, as_trainer_logs
from hicra.train.config import HICRAConfig
from hicra.train.group_passk import group_pass_at_k
from hicra.train.heldout_eval import HeldoutEvaluator, HeldoutSet
from hicra.train.images import (
    gather_rollout_images,
    image_fields,
    images_per_row,
    media_token_ids,
    multimodal_inputs,
    without_media_tokens,
)
from hicra.train.placebo import PLACEBO_FILE, PlaceboUnmatched, draw_placebo
from hicra.train.rewards import completion_text
from hicra.train.success import attach_success_signal
from hicra.train.success import describe as describe_success


def _user_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    for message in reversed(prompt or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content", "")
            return content if isinstance(content, str) else completion_text([message])
    return str(prompt)


def real_tokens(batch: dict[str, Any]) -> torch.Tensor:
    """The model's own completion tokens: the completion mask, minus tool outputs (TRL's tool_mask)."""
    real = batch["completion_mask"].bool()
    if "tool_mask" in batch:
        real = real & batch["tool_mask"].bool()
    return real


class HICRATrainer(GRPOTrainer):
    """TRL's GRPOTrainer with hierarchy-aware credit assignment and hierarchy metrics.

    Writes `metrics.jsonl`, `rollouts.jsonl` and `config.yaml` into `args.output_dir`.
    `run_config` adds fields (model, dataset, ...) to config.yaml. With `args.eval_benchmarks`,
    scores the policy on held-out benchmarks while training (`heldout`: the set, read already;
    else read here, asked with the prompt fields of `run_config`).
    """

    def __init__(
        self,
        *args: Any,
        strategic_grams: StrategicGrams | str | None = None,
        run_config: dict[str, Any] | None = None,
        heldout: HeldoutSet | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, HICRAConfig):
            raise HicraError(
                "HICRATrainer needs an HICRAConfig (a GRPOConfig with the HICRA fields)"
            )
        self.credit = get_credit(self.args.credit)
        self.grams = StrategicGrams.resolve(strategic_grams or self.args.strategic_grams)
        tokenizer = getattr(self.processing_class, "tokenizer", self.processing_class)
        self.tagger = PlanningTagger(self.grams, tokenizer)
        self._media_ids = media_token_ids(self.processing_class, self.model)  # VLMs: image tokens
        self.run_log = RunLog(self.args.output_dir, is_main=self.accelerator.is_main_process)
        self._run_config = dict(run_config or {})
        self._window = torch.zeros(4, dtype=torch.float64)  # loss-time sums of one optimizer step
        self._window_tokens: list[tuple[torch.Tensor, torch.Tensor]] = []  # (entropy, planning)
        self.success_signal = self._accuracy = attach_success_signal(self)  # hicra/accuracy
        self._last_entropies: torch.Tensor | None = None
        self.placebo_grams = placebo.load_or_none(self.args.output_dir)
        self._placebo_warned = False
        if (
            self.placebo_grams is None
            and self.args.placebo_corpus
            and ("placebo_mask" in self.credit.needs)
        ):
            self._draw_placebo_from_corpus(tokenizer)
        self.placebo_tagger = (
            PlanningTagger(self.placebo_grams, tokenizer) if self.placebo_grams else None
        )
        self.heldout_evaluator = self._heldout_evaluator(heldout)
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
        if self.heldout_evaluator is not None:
            self.heldout_evaluator.start()  # evaluations already in metrics.jsonl are not redone
        return super().train(resume_from_checkpoint=checkpoint, **kwargs)

    # ------------------------------------------------------------------ held-out evaluation
    def _heldout_evaluator(self, heldout: HeldoutSet | None) -> HeldoutEvaluator | None:
        if not self.args.eval_benchmarks:
            return None
        if heldout is None:
            style = PromptStyle.of_run(self._run_config)
            heldout = HeldoutSet.load(self.args.eval_benchmarks, self.args.eval_limit, style)
        return HeldoutEvaluator(self, heldout)

    def _maybe_log_save_evaluate(self, *args: Any, **kwargs: Any) -> None:
        """A due held-out evaluation runs before the step's checkpoint is saved: a checkpoint at
        step N means the evaluation at N is in metrics.jsonl, so a resume never redoes it."""
        step = self.state.global_step
        if self.heldout_evaluator is not None and self.heldout_evaluator.due(step):
            logs = as_trainer_logs(self.heldout_evaluator.run(step))
            self.state.log_history.append({**logs, "step": step})
            # straight to the callbacks (metrics.jsonl, report_to backends): GRPOTrainer.log would
            # add and clear the step's training metrics; on_log clears should_log, which the
            # step's own training log (in super) still needs
            should_log = self.control.should_log
            self.control = self.callback_handler.on_log(self.args, self.state, self.control, logs)
            self.control.should_log = should_log
        super()._maybe_log_save_evaluate(*args, **kwargs)

    def _config_record(self) -> dict[str, Any]:
        model_id = getattr(getattr(self.model, "config", None), "_name_or_path", None)
        record = {"hicra_version": __version__, "model_name_or_path": model_id}
        record.update(self._run_config)
        args = self.args.to_replayable_dict()
        record.update({k: v for k, v in args.items() if k not in record})
        record["success_signal"] = describe_success(self._accuracy)
        record["strategic_grams_resolved"] = {"name": self.grams.name, "count": len(self.grams)}
        return record

    def _tokenize_prompts(self, prompts: list[Any]) -> tuple[Any, Any, Any]:
        prompt_ids, images, fields = super()._tokenize_prompts(prompts)
        return prompt_ids, images_per_row(images), fields  # text rows beside image rows

    # ------------------------------------------------------------------ credit assignment
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        real = real_tokens(out)
        counts: Counter[str] = Counter()
        planning = self.tagger.token_mask(
            out["completion_ids"],
            real,
            gram_counts=counts,
            counting=self.args.gram_counting,
            strict=False,
        )
        planning = without_media_tokens(
            planning.to(real.device), out["completion_ids"], self._media_ids
        )
        sequence_advantages = out["advantages"]
        out["planning_mask"] = planning
        out["sequence_advantages"] = sequence_advantages
        out["advantages"] = self._assign_credit(sequence_advantages, planning, real, out, mode)
        if self.args.hierarchy_metrics:
            self._log_generation_metrics(mode, out["advantages"], planning, real, counts)
        if mode == "train" and self._accuracy is not None:
            self._log_group_pass_at_k()
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
        """One registry lookup: the credit rule gets only what it declared it needs."""
        entropies = threshold = placebo = None
        if "placebo_mask" in self.credit.needs:
            placebo = self._placebo_mask(out["completion_ids"], real)
            if self.args.hierarchy_metrics:
                marked, tokens = self._reduce([float(placebo.sum()), float(real.sum())], "placebo")
                self._metrics[mode][Metric.PLACEBO_RATIO].append(_ratio(marked, tokens))
        if "entropies" in self.credit.needs:
            entropies = self._generation_entropies(out, mode)
            threshold = self._global_quantile(
                entropies[real], self.args.fork_quantile, kind="credit_entropies"
            )
        batch = CreditBatch(
            advantages=advantages,
            planning_mask=planning,
            completion_mask=real,
            group_size=self.num_generations if mode == "train" else self.num_generations_eval,
            alpha=self.args.hicra_alpha,
            quantile=self.args.fork_quantile,
            entropies=entropies,
            entropy_threshold=threshold,
            placebo_mask=placebo,
        )
        return self.credit.rule(batch)

    def _draw_placebo_from_corpus(self, tokenizer: Any) -> None:
        """The placebo set drawn from `placebo_corpus` (the same on every process), saved."""
        texts = placebo.corpus_texts(self.args.placebo_corpus)
        rows = [np.asarray(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        draw = draw_placebo(texts, rows, self.grams, self.tagger, self.args.seed)
        if draw is None:
            raise HicraError(
                f"placebo_corpus {self.args.placebo_corpus}: no strategic gram ({self.grams.name}) "
                "occurs in it, so there is no planning-token ratio to match"
            )
        self.placebo_grams = draw.grams
        if self.accelerator.is_main_process:
            draw.grams.save(Path(self.args.output_dir) / PLACEBO_FILE)

    def _placebo_mask(self, completion_ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Tokens of the placebo n-grams; the set is drawn on the first batch with planning tokens
        (the same on every process: drawn from the gathered batch), then saved and kept."""
        if self.placebo_tagger is None:
            ids = self.accelerator.pad_across_processes(completion_ids, dim=1, pad_index=0)
            keep = self.accelerator.pad_across_processes(real.long(), dim=1, pad_index=0)
            ids, keep = self.accelerator.gather(ids).cpu(), self.accelerator.gather(keep).cpu()
            rows = [row[mask.bool()].numpy() for row, mask in zip(ids, keep, strict=True)]
            texts = [self.tagger.decode_with_spans(row)[0] for row in rows]
            try:
                draw = draw_placebo(texts, rows, self.grams, self.tagger, self.args.seed)
            except PlaceboUnmatched as err:  # this batch cannot be matched: try the next one
                if not self._placebo_warned and self.accelerator.is_main_process:
                    print(
                        f"hicra train: placebo: {err}; drawing again on the next batch",
                        file=sys.stderr,
                    )
                self._placebo_warned = True
                draw = None
            if draw is None:  # no strategic gram yet: nothing to match, nothing to upweight
                return torch.zeros_like(real)
            self.placebo_grams = draw.grams
            self.placebo_tagger = PlanningTagger(draw.grams, self.tagger.tokenizer)
            if self.accelerator.is_main_process:
                draw.grams.save(Path(self.args.output_dir) / PLACEBO_FILE)
        mask = self.placebo_tagger.token_mask(completion_ids, real, strict=False)
        return mask.to(real.device)

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
                **multimodal_inputs(out),  # a vision-language batch: its images
            )
        return entropies

    def _gather_values(self, values: torch.Tensor, kind: str) -> torch.Tensor:
        """A 1-D tensor of every process's values (each process's own count), in rank order.

        `kind` names the values ("credit_entropies", "fork_entropies", "fork_planning"), for anyone
        who wraps this method.
        """
        local = values.detach().float().reshape(-1).to(self.accelerator.device)
        if self.accelerator.num_processes == 1:
            return local
        padded = self.accelerator.pad_across_processes(local, dim=0, pad_index=math.nan)
        gathered = self.accelerator.gather(padded)
        return gathered[~torch.isnan(gathered)]

    def _global_quantile(self, values: torch.Tensor, quantile: float, kind: str) -> float | None:
        """The quantile (linear interpolation) over the values of every process: the same for
        any split of one global batch over processes."""
        everything = self._gather_values(values, kind)
        return batch_quantile(everything, quantile) if everything.numel() else None

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
                float(sum(score >= 1.0 for score in scores)),  # exactly correct, never partial
                float(len(scores)),
                float(counts_of.get("verify_timeouts", 0)),
                float(counts_of.get("scorer_errors", 0)),
            ],
            kind="generation",
        )
        merged: Counter[str] = Counter()
        for part in gather_object([dict(counts)]):
            merged.update(part)
        occurrences = sum(merged.values())
        metrics = self._metrics[mode]
        metrics[Metric.PLANNING_RATIO].append(_ratio(n_plan, n_plan + n_exec))
        metrics[Metric.PLANNING_ADVANTAGE].append(_ratio(adv_plan, n_plan))
        metrics[Metric.EXECUTION_ADVANTAGE].append(_ratio(adv_exec, n_exec))
        metrics[Metric.GRAM_OCCURRENCES].append(float(occurrences))
        # No gram at all: the diversity is unknown (missing), not zero.
        metrics[Metric.SEMANTIC_ENTROPY].append(
            semantic_entropy(merged) if occurrences else math.nan
        )
        metrics[Metric.SEMANTIC_ENTROPY_MM].append(
            semantic_entropy_miller_madow(merged) if occurrences else math.nan
        )
        metrics[Metric.DISTINCT_GRAMS].append(float(len(merged)))
        if self._accuracy is not None:
            metrics[Metric.ACCURACY].append(_ratio(correct, scored))
            metrics[Metric.COMPLETIONS].append(scored)
            metrics[Metric.VERIFY_TIMEOUTS].append(timeouts)
            metrics[Metric.SCORER_ERRORS].append(errors)

    def _log_group_pass_at_k(self) -> None:
        """`hicra/pass@k` over the prompt groups of the whole generation batch (every process:
        TRL splits the batch into consecutive slices by rank, so groups stay contiguous)."""
        local = [score >= 1.0 for score in self._accuracy.last_scores]
        everything = gather_object(local)
        if not everything or len(everything) % self.num_generations:
            return
        for k, value in group_pass_at_k(everything, self.num_generations).items():
            self._metrics["train"][Metric.group_pass_at(k)].append(value)

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
        """Collect an optimizer step's micro-batches, then log its entropy metrics once.

        Entropy means are token-weighted sums over processes; the fork overlap's "high entropy"
        threshold is the quantile over every real token of the step on every process, so it does
        not depend on the micro-batch size or the number of processes.
        """
        real = real_tokens(inputs)
        planning = inputs["planning_mask"].bool() & real
        split = token_entropy_by_class(entropies, planning, real)
        self._window += torch.tensor(
            [
                split.planning_sum,
                split.planning_tokens,
                split.execution_sum,
                split.execution_tokens,
            ],
            dtype=torch.float64,
        )
        self._window_tokens.append((entropies[real].float(), planning[real]))
        mode = "train" if self.model.training else "eval"
        if mode == "train" and not self.accelerator.sync_gradients:
            return
        p_sum, p_n, e_sum, e_n = self._reduce(self._window.tolist(), kind="loss")
        values = torch.cat([v for v, _ in self._window_tokens])
        flags = torch.cat([f for _, f in self._window_tokens]).float()
        self._window.zero_()
        self._window_tokens = []
        all_values = self._gather_values(values, kind="fork_entropies")
        all_flags = self._gather_values(flags, kind="fork_planning").bool()
        fork = fork_overlap(
            all_values.unsqueeze(0),
            all_flags.unsqueeze(0),
            torch.ones_like(all_flags).unsqueeze(0),
            self.args.fork_quantile,
        )
        metrics = self._metrics[mode]
        metrics[Metric.PLANNING_ENTROPY].append(_ratio(p_sum, p_n))
        metrics[Metric.EXECUTION_ENTROPY].append(_ratio(e_sum, e_n))
        metrics[Metric.ENTROPY].append(_ratio(p_sum + e_sum, p_n + e_n))
        metrics[Metric.FORK_PLANNING_HIGH].append(_none_nan(fork.planning_high_entropy_share))
        metrics[Metric.FORK_HIGH_PLANNING].append(_none_nan(fork.high_entropy_planning_share))

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
        total = len(lengths)
        group = self.num_generations
        keep = min(total, self.args.rollouts_per_step * group)
        refs = gather_rollout_images(self, inputs, keep)  # vision-language rows: their images
        if not self.accelerator.is_main_process:
            return
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
            rows.append(
                {
                    RolloutField.STEP: step,
                    RolloutField.GROUP: i // group,
                    RolloutField.PROMPT: _user_text(prompts[i]),
                    RolloutField.COMPLETION: text,
                    RolloutField.ANSWER: answers[i],
                    RolloutField.REWARD: sum(
                        w * (v if v == v else 0.0)
                        for w, v in zip(weights, rewards.values(), strict=True)
                    ),
                    RolloutField.REWARDS: rewards,
                    RolloutField.CORRECT: self._accuracy and self._accuracy.correct(rewards),
                    RolloutField.ADVANTAGE: seq_adv[i],
                    RolloutField.PLANNING_SPANS: [list(s) for s in self.tagger.spans(text)],
                    RolloutField.LENGTH: int(lengths[i]),
                    RolloutField.PLANNING_TOKENS: int(plan_counts[i]),
                    **image_fields(refs[i] if refs else []),
                }
            )
        self.run_log.log_rollouts(rows)


def _ratio(total: float, count: float) -> float:
    return total / count if count else float("nan")


def _none_nan(value: float | None) -> float:
    return float("nan") if value is None else value
