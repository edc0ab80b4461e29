"""Deprecated alias of `hicra.testing.tiny`: the tiny test model is test support, not library.

A package rather than tiny.py, so that git's rename detection carries edits made to the old
file over to testing/tiny.py.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

from hicra._aliases import deprecated_alias
from hicra.testing import tiny as _moved

deprecated_alias(__name__, _moved)
