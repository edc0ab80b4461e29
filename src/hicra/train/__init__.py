"""The train wing: everything `hicra train` runs, on top of TRL's GRPOTrainer.

One job per module: `config` (HICRAConfig and TrainArgs: what defines a run, and how the YAML and
flag layers resolve), `data` (prompts and gold answers from files, the hub or reasoning-gym),
`images` (vision-language rows and prompts, the modality checks, the trainer's image hooks),
`rewards` (the accuracy and format rewards in TRL's calling convention), `trainer` (HICRATrainer:
credit assignment through the registry in `hicra.advantages`, the hierarchy metrics, rollouts),
`callbacks` (metrics.jsonl and the console line), `runner` (build it all and run it).
Imports stay lazy: `import hicra.train` loads nothing heavy.
"""
