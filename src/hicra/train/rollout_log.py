"""A few whole prompt groups per generation into rollouts.jsonl: text, rewards, planning spans.

Read by `hicra report` (the rollout browser); vision-language rows also name their images and get
a thumbnail (`train.images.gather_rollout_images`).
"""

from __future__ import annotations

from typing import Any

import torch
from accelerate.utils import gather_object

from hicra.run_folder import RolloutField
from hicra.train.images import gather_rollout_images, image_fields
from hicra.train.rewards import completion_text


def user_text(prompt: Any) -> str:
    """The prompt's last user turn as text (a plain-string prompt as it is)."""
    if isinstance(prompt, str):
        return prompt
    for message in reversed(prompt or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content", "")
            return content if isinstance(content, str) else completion_text([message])
    return str(prompt)


def log_rollouts(
    trainer: Any,
    inputs: list[dict[str, Any]],
    planning: torch.Tensor,
    real: torch.Tensor,
) -> None:
    """`args.rollouts_per_step` groups of the batch, from TRL's completion logs (main process)."""
    accelerator = trainer.accelerator
    lengths = accelerator.gather(real.sum(dim=1)).tolist()
    plan_counts = accelerator.gather(planning.sum(dim=1)).tolist()
    answers = gather_object([x.get("answer") for x in inputs])
    total = len(lengths)
    group = trainer.num_generations
    keep = min(total, trainer.args.rollouts_per_step * group)
    refs = gather_rollout_images(trainer, inputs, keep)  # vision-language rows: their images
    if not accelerator.is_main_process:
        return
    logs = trainer._logs
    prompts = list(logs["prompt"])[-total:][:keep]
    completions = list(logs["completion"])[-total:][:keep]
    seq_adv = list(logs["advantages"])[-total:][:keep]
    reward_names = list(logs["rewards"])
    per_func = {n: list(logs["rewards"][n])[-total:][:keep] for n in reward_names}
    weights = trainer.reward_weights.tolist()
    step = trainer.state.global_step + 1
    rows = []
    for i in range(keep):
        text = completion_text(completions[i])
        rewards = {n: per_func[n][i] for n in reward_names}
        rows.append(
            {
                RolloutField.STEP: step,
                RolloutField.GROUP: i // group,
                RolloutField.PROMPT: user_text(prompts[i]),
                RolloutField.COMPLETION: text,
                RolloutField.ANSWER: answers[i],
                RolloutField.REWARD: sum(
                    w * (v if v == v else 0.0)
                    for w, v in zip(weights, rewards.values(), strict=True)
                ),
                RolloutField.REWARDS: rewards,
                RolloutField.CORRECT: trainer._accuracy and trainer._accuracy.correct(rewards),
                RolloutField.ADVANTAGE: seq_adv[i],
                RolloutField.PLANNING_SPANS: [list(s) for s in trainer.tagger.spans(text)],
                RolloutField.LENGTH: int(lengths[i]),
                RolloutField.PLANNING_TOKENS: int(plan_counts[i]),
                **image_fields(refs[i] if refs else []),
            }
        )
    trainer.run_log.log_rollouts(rows)
