"""The train wing: everything `hicra train` runs, on top of TRL's GRPOTrainer.

One job per module: `layers` (the YAML layer and flags, read and number-checked once before TRL
loads), `config` (HICRAConfig and TrainArgs: what defines a run, and how the YAML and flag layers
resolve), `data` (prompts and gold answers from files, the hub or reasoning-gym; the image-field
schema), `images` (vision-language datasets and processors, the modality checks, the trainer's
image hooks), `rewards` (the accuracy and format rewards in TRL's calling convention), `placebo`
(the placebo control's random frequent n-grams, and a run's set), `hicra_trainer` (HICRATrainer:
its TRL overrides, wiring the modules that do the work: `credit_step` for credit assignment
through the registry in `hicra.advantages`, `generation_metrics` and `entropy_metrics` for the
hierarchy metrics, `rollout_log`, `run_start`, `collectives`, `heldout_eval`), `callbacks`
(metrics.jsonl and the console line), `runner` (build it all and run it).
Imports stay lazy: `import hicra.train` loads nothing heavy.
"""
