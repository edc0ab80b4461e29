"""Deprecated alias of `hicra.experiment.report`: the experiment report belongs to its wing.

A package rather than report/experiment.py, so that git's rename detection carries edits made
to the old file over to experiment/report.py.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

from hicra._aliases import deprecated_alias
from hicra.experiment import report as _moved

deprecated_alias(__name__, _moved)
