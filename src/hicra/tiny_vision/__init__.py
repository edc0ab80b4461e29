"""Deprecated alias of `hicra.testing.tiny_vision`: test support, not library.

A package rather than tiny_vision.py, so that git's rename detection carries edits made to the old
file over to testing/tiny_vision.py.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

from hicra._aliases import deprecated_alias
from hicra.testing import tiny_vision as _moved

deprecated_alias(__name__, _moved)
