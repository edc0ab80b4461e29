#!/usr/bin/env bash
# HICRA on verl: Qwen2.5-7B (base) on DAPO-Math-17k with vLLM rollouts, 4 nodes x 8 GPUs (80 GB).
# The paper's setting as far as it reports one (arXiv 2509.03646: verl, 8 rollouts per prompt,
# alpha = 0.2, DAPO's clip-higher); the rest is verl's DAPO recipe for 7B models.
# Needs: pip install "hicra[verl]" on every node (docs/verl.md), a Ray cluster (`ray start`), and
# the data prepared as verl's DAPO recipe does (data_source "math_dapo", prompt key "prompt").
# Extra arguments are Hydra overrides, e.g. `+algorithm.credit=grpo` for the GRPO baseline arm.
set -euo pipefail

DATA_DIR=${DATA_DIR:-$HOME/data}
MODEL=${MODEL:-Qwen/Qwen2.5-7B}
CKPT_DIR=${CKPT_DIR:-$HOME/ckpts/hicra-qwen2.5-7b-dapo}
NNODES=${NNODES:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
max_prompt=2048
max_response=8192
overlong_buffer=4096

overrides=(
  # HICRA: the estimator (verl's GRPO), the trainer that finds planning tokens, HICRA's settings
  algorithm.adv_estimator=hicra
  trainer.v1.trainer_mode=hicra_sync
  +algorithm.credit=hicra
  +algorithm.hicra_alpha=0.2
  +algorithm.strategic_grams=paper
  algorithm.norm_adv_by_std_in_grpo=True
  algorithm.use_kl_in_reward=False

  data.train_files="$DATA_DIR/dapo-math-17k.parquet"
  data.val_files="$DATA_DIR/aime-2024.parquet"
  data.prompt_key=prompt
  data.truncation=left
  data.max_prompt_length=$max_prompt
  data.max_response_length=$max_response
  data.train_batch_size=512

  actor_rollout_ref.model.path="$MODEL"
  actor_rollout_ref.model.use_remove_padding=True
  actor_rollout_ref.model.enable_gradient_checkpointing=True
  actor_rollout_ref.actor.optim.lr=1e-6
  actor_rollout_ref.actor.optim.lr_warmup_steps=10
  actor_rollout_ref.actor.optim.weight_decay=0.1
  actor_rollout_ref.actor.ppo_mini_batch_size=32
  actor_rollout_ref.actor.use_dynamic_bsz=True
  actor_rollout_ref.actor.ppo_max_token_len_per_gpu=$(((max_prompt + max_response) * 2))
  actor_rollout_ref.actor.use_kl_loss=False
  actor_rollout_ref.actor.kl_loss_coef=0.0
  actor_rollout_ref.actor.entropy_coeff=0
  actor_rollout_ref.actor.clip_ratio_low=0.2
  actor_rollout_ref.actor.clip_ratio_high=0.28
  actor_rollout_ref.actor.loss_agg_mode=token-mean
  actor_rollout_ref.actor.grad_clip=1.0
  actor_rollout_ref.actor.fsdp_config.param_offload=True
  actor_rollout_ref.actor.fsdp_config.optimizer_offload=True

  actor_rollout_ref.rollout.name=vllm
  actor_rollout_ref.rollout.n=8
  actor_rollout_ref.rollout.temperature=1.0
  actor_rollout_ref.rollout.top_p=1.0
  actor_rollout_ref.rollout.top_k=-1
  actor_rollout_ref.rollout.tensor_model_parallel_size=2
  actor_rollout_ref.rollout.gpu_memory_utilization=0.8
  actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=True
  actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=$(((max_prompt + max_response) * 3))
  actor_rollout_ref.rollout.val_kwargs.temperature=0.6
  actor_rollout_ref.rollout.val_kwargs.top_p=0.95
  actor_rollout_ref.rollout.val_kwargs.do_sample=True
  actor_rollout_ref.rollout.val_kwargs.n=32

  # DAPO's reward: boxed-answer accuracy with an overlong-response penalty
  reward.reward_manager.name=dapo
  +reward.reward_kwargs.overlong_buffer_cfg.enable=True
  +reward.reward_kwargs.overlong_buffer_cfg.len=$overlong_buffer
  +reward.reward_kwargs.overlong_buffer_cfg.penalty_factor=1.0
  +reward.reward_kwargs.overlong_buffer_cfg.log=False
  +reward.reward_kwargs.max_resp_len=$max_response

  trainer.logger=[console,wandb]
  trainer.project_name=hicra
  trainer.experiment_name=hicra-qwen2.5-7b-dapo-math
  trainer.nnodes=$NNODES
  trainer.n_gpus_per_node=$GPUS_PER_NODE
  trainer.total_training_steps=500
  trainer.val_before_train=True
  trainer.test_freq=10
  trainer.save_freq=20
  trainer.default_local_dir="$CKPT_DIR"
  trainer.resume_mode=auto
)

python3 -m verl.trainer.main_ppo "${overrides[@]}" "$@"
