"""Deprecated alias of `hicra.testing.tiny_vision`: test support, not library.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

import sys
import warnings

from hicra.testing import tiny_vision as _moved

warnings.warn(
    f"{__name__} is deprecated: it moved to hicra.testing.tiny_vision",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
