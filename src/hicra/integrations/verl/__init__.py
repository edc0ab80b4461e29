"""HICRA as a verl plugin (`pip install hicra[verl]`; docs/verl.md).

One job per module: `settings` (HICRA's keys under verl's `algorithm` section, checked at
start-up), `credit` (one step's planning tags, registered credit rule and hierarchy metrics on
padded tensors), `estimator` (the `hicra` advantage estimator: verl's GRPO with the trainer's
credit applied, refused outside the HICRA trainer), `trainers` (the HICRA trainers for verl's v1
modes), `workers` (the agent-loop manager whose workers tag each response as it is produced,
so that the driver only applies the credit), `run_log` (the run folder `hicra report` reads), `plugin` (the `verl.plugins` entry point:
imports the two registering modules and reports a failure loudly).
Importing this package loads nothing; `settings`, `credit` and `run_log` import neither verl nor
trl, and no module here imports trl (verl's fsdp and megatron extras pin an old trl).
"""
