"""Deprecated alias of `hicra.testing.tiny`: the tiny test model is test support, not library.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

import sys
import warnings

from hicra.testing import tiny as _moved

warnings.warn(
    f"{__name__} is deprecated: it moved to hicra.testing.tiny", DeprecationWarning, stacklevel=2
)
sys.modules[__name__] = _moved
