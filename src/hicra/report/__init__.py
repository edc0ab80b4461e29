"""`hicra report`: run folders -> dynamics plots, phase detection and a self-contained HTML page.

Modules, one job each: runs (read a run folder), curves (what each plotted series means), phases
(change-point rule, pure functions), rollouts (stream and sample rollouts.jsonl), summary (one
run's findings), plots (PNG figures), thumbnails (vision-language rollouts' prompt images, inlined
once), html (the page), build (all of it, written to a folder). An experiment folder's report is
the experiment wing's (`hicra.experiment.report`), which draws each run with this one.
This module stays import-light: the CLI reads the defaults without loading matplotlib.
"""

DEFAULT_SMOOTH = 5  # centered moving average over this many logged points
DEFAULT_MAX_ROLLOUTS = 200  # rollouts per run in the HTML browser
DEFAULT_TOP_GRAMS = 15  # strategic grams listed per phase
