"""`hicra experiment`: controlled multi-seed comparisons of credit assignment, with controls and CIs.

One job per module: `spec` (the experiment file: base config, arms, seeds, baseline, eval; every
arm x seed as a `hicra train` config), `status` (what each run folder holds: missing, running,
killed, finished), `execute` (run the missing and killed runs, N at a time, then their evaluation),
`heldout` (a held-out problem set with no training question in it), `analysis` (per-arm means and
bootstrap CIs, paired comparisons with exact sign-flip p-values, plain-language verdicts, written
as results.json and results.md), `report` (`hicra report DIR` on an experiment folder: each arm's
band over seeds, the tables and verdicts).
"""

EXPERIMENT_FILE = "experiment.yaml"  # the resolved experiment, saved in its folder
RESULTS_FILE = "results.json"
MARKDOWN_FILE = "results.md"
HELDOUT_FILE = "heldout.jsonl"
SEED_PREFIX = "seed-"
