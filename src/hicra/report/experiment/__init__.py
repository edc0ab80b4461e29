"""Deprecated alias of `hicra.experiment.report`: the experiment report belongs to its wing.

A package rather than report/experiment.py, so that git's rename detection carries edits made
to the old file over to experiment/report.py.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

import sys
import warnings

from hicra.experiment import report as _moved

warnings.warn(
    f"{__name__} is deprecated: it moved to hicra.experiment.report",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
