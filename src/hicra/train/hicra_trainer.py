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

The class is wiring only; each job lives in its own module: `credit_step` (planning mask and
credit), `generation_metrics` and `entropy_metrics` (the hierarchy lens), `rollout_log`,
`placebo.control_for` (the control arms' masks), `heldout_eval.HeldoutEvaluator` (held-out evaluation), `images` (the
vision-language hooks), `run_start` (resume, config.yaml), `collectives` (cross-process sums).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.trainer_callback import ProgressCallback
from trl import GRPOTrainer

from hicra.advantages import get_credit
from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.run_folder import RunLog
from hicra.tagging import PlanningTagger
from hicra.train import collectives, placebo
from hicra.train.callbacks import CompactProgressCallback, MetricsCallback
from hicra.train.config import HICRAConfig
from hicra.train.credit_step import (
    assign_credit,
    generation_entropies,
    planning_mask,
    real_tokens,
)
from hicra.train.entropy_metrics import EntropyWindow, accumulate_entropy_metrics
from hicra.train.generation_metrics import log_generation_metrics, log_group_pass_at_k
from hicra.train.heldout_eval import HeldoutEvaluator, HeldoutSet
from hicra.train.images import images_per_row, media_token_ids
from hicra.train.outcome import PlanningWatch, outcome_metrics
from hicra.train.rollout_log import log_rollouts
from hicra.train.run_start import start_run_folder
from hicra.train.success import attach_success_signal


class HICRATrainer(GRPOTrainer):
    """TRL's GRPOTrainer with hierarchy-aware credit assignment and hierarchy metrics.

    Writes `metrics.jsonl`, `rollouts.jsonl` and `config.yaml` into `args.output_dir`.
    `run_config` adds fields (model, dataset, ...) to config.yaml. With `args.eval_benchmarks`,
    scores the policy on held-out benchmarks while training (`heldout`: the set, read already;
    else read here, asked with the prompt fields of `run_config`).

    Methods of TRL 1.16 (`trl>=1.16,<1.17`, and transformers' `Trainer`) it overrides, each
    calling the original; the private ones are why TRL is pinned below 1.17:

    - `train` (Trainer, public): resume cuts the logs back to the checkpoint, a fresh run sets old
      logs aside, config.yaml is written (`run_start`).
    - `_generate_and_score_completions` (GRPOTrainer, private): after TRL's (B,) advantages, the
      planning mask and the credit rule (`credit_step`), the generation metrics, pass@k and the
      rollouts.
    - `_compute_loss` (GRPOTrainer, private): the loss-time entropy metrics of each micro-batch
      (`entropy_metrics`), from the entropies of the loss forward pass.
    - `_get_per_token_logps_and_entropies` (GRPOTrainer, private): keeps the entropies TRL computes
      in that forward pass. The credit's extra entropy pass calls TRL's own version (`super()`).
    - `_tokenize_prompts` (GRPOTrainer, private): a text row's images None become [] beside image
      rows (`images.images_per_row`; Idefics3's processor refuses None), so one batch may mix them.
    - `_maybe_log_save_evaluate` (Trainer, private): a due held-out evaluation runs before the
      step's checkpoint is saved (`HeldoutEvaluator.log_if_due`).

    It also reads GRPOTrainer's private state: `_metrics` (the metric store the callbacks log),
    `_logs` (prompts, completions, rewards and advantages for rollouts), `num_generations`,
    `num_generations_eval`, `reward_weights`, `use_vllm`.

    HICRA's own seams, for subclasses that observe or change them: `_generation_entropies`,
    `_accumulate_entropy_metrics`, `_reduce`, `_gather_values`, `_global_quantile`.
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
        self.entropy_window = EntropyWindow()  # loss-time values of one optimizer step
        self.success_signal = self._accuracy = attach_success_signal(self)  # hicra/accuracy
        self._last_entropies: torch.Tensor | None = None
        self.control_arm = placebo.control_for(  # placebo n-grams or random tokens, else None
            self.credit, self.args.seed, self.args.output_dir, self.grams, self.tagger,
            self.accelerator, self._run_config, self.args.placebo_corpus,
        )  # fmt: skip
        self._planning_watch = PlanningWatch(
            self.args.credit, self.grams.name, self.accelerator.is_main_process
        )
        self.heldout_evaluator = HeldoutEvaluator.for_run(self, heldout, self._run_config)
        self.add_callback(MetricsCallback(self.run_log))
        if any(isinstance(cb, ProgressCallback) for cb in self.callback_handler.callbacks):
            self.remove_callback(ProgressCallback)
            self.add_callback(CompactProgressCallback())

    # ------------------------------------------------------------------ TRL overrides
    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """Resume cuts the logs back to the checkpoint's step; a fresh run keeps old logs aside."""
        checkpoint = start_run_folder(self, resume_from_checkpoint)
        if self.heldout_evaluator is not None:
            self.heldout_evaluator.start()  # evaluations already in metrics.jsonl are not redone
        return super().train(resume_from_checkpoint=checkpoint, **kwargs)

    def _maybe_log_save_evaluate(self, *args: Any, **kwargs: Any) -> None:
        if self.heldout_evaluator is not None:
            self.heldout_evaluator.log_if_due()  # before super saves the step's checkpoint
        super()._maybe_log_save_evaluate(*args, **kwargs)

    def _tokenize_prompts(self, prompts: list[Any]) -> tuple[Any, Any, Any]:
        prompt_ids, images, fields = super()._tokenize_prompts(prompts)
        return prompt_ids, images_per_row(images), fields  # text rows beside image rows

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        real = real_tokens(out)
        planning, counts = planning_mask(self, out["completion_ids"], real)
        sequence_advantages = out["advantages"]
        out["planning_mask"] = planning
        out["sequence_advantages"] = sequence_advantages
        out["advantages"] = assign_credit(self, sequence_advantages, planning, real, out, mode)
        if self.args.hierarchy_metrics:
            log_generation_metrics(self, mode, out["advantages"], planning, real, counts)
        else:  # what the analysis compares runs on is logged in every run
            for key, value in outcome_metrics(self._accuracy, planning, real, self._reduce).items():
                self._metrics[mode][key].append(value)
        if mode == "train":
            self._planning_watch.see(self.state.global_step, planning, real, self._reduce)
        if mode == "train" and self._accuracy is not None:
            log_group_pass_at_k(self)
        if mode == "train" and self.args.rollouts_per_step > 0:
            log_rollouts(self, inputs, planning, real)
        return out

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

    # ------------------------------------------------------------------ HICRA's seams
    def _generation_entropies(self, out: dict[str, Any], mode: str) -> torch.Tensor:
        """Per-token entropies of the policy that sampled the batch (for entropy credits)."""
        forward = super()._get_per_token_logps_and_entropies  # TRL's, not the override above
        return generation_entropies(self, forward, out, mode)

    def _accumulate_entropy_metrics(self, inputs: dict[str, Any], entropies: torch.Tensor) -> None:
        """Collect an optimizer step's micro-batches, then log its entropy metrics once."""
        accumulate_entropy_metrics(self, inputs, entropies)

    def _reduce(self, values: list[float], kind: str) -> list[float]:
        """Sum over processes. `kind` ("generation", "loss", "placebo", "planning_watch") names the statistics."""
        return collectives.reduce_sum(self.accelerator, values)

    def _gather_values(self, values: torch.Tensor, kind: str) -> torch.Tensor:
        """Every process's values in rank order. `kind` ("credit_entropies", "fork_entropies",
        "fork_planning") names them."""
        return collectives.gather_values(self.accelerator, values)

    def _global_quantile(self, values: torch.Tensor, quantile: float, kind: str) -> float | None:
        """The quantile (linear interpolation) over the values of every process: the same for
        any split of one global batch over processes."""
        everything = self._gather_values(values, kind)
        return collectives.quantile_or_none(everything, quantile)
