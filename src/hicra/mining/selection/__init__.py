"""Deprecated alias of `hicra.mining.paper_selection`: it serves the paper's pipeline only.

A package rather than mining/selection.py, so that git's rename detection carries edits made to the old
file over to mining/paper_selection.py.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

from hicra._aliases import deprecated_alias
from hicra.mining import paper_selection as _moved

deprecated_alias(__name__, _moved)
