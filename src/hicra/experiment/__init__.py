"""`hicra experiment`: controlled multi-seed comparisons of credit assignment, with controls and CIs.

One job per module: `spec` (the experiment file: base config, arms, seeds, baseline, contrasts,
primary metric, eval; every arm x seed as a `hicra train` config), `status` (what each run folder
holds: missing, running, killed, finished), `execute` (run the missing and killed runs, N at a
time, then their evaluation), `heldout` (a held-out problem set with no training question in it),
`metrics` (the table of what is read from each run), `stats` (t-intervals, paired t-tests, Holm,
power: pure functions), `calibration` (their coverage and false-positive rates, by simulation),
`loading` (an experiment folder's runs, checked for consistency), `checks` (notes a reader needs
on the runs), `comparisons` (paired contrasts, Holm per family), `verdicts` (one plain line per
comparison, the placebo pair's verdict, the power note), `markdown` (results.md), `analysis` (the
wiring: results.json's content), `report` (`hicra report DIR` on an experiment
folder: each arm's band over seeds, the tables and verdicts).
"""

EXPERIMENT_FILE = "experiment.yaml"  # the resolved experiment, saved in its folder
RESULTS_FILE = "results.json"
MARKDOWN_FILE = "results.md"
HELDOUT_FILE = "heldout.jsonl"
SEED_PREFIX = "seed-"
