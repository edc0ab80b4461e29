"""Deprecated alias of `hicra.mining.paper_selection`: it serves the paper's pipeline only.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

import sys
import warnings

from hicra.mining import paper_selection as _moved

warnings.warn(
    f"{__name__} is deprecated: it moved to hicra.mining.paper_selection",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
