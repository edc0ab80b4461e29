"""Deprecated alias of `hicra.mining.paper_selection`: it serves the paper's pipeline only.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

from hicra._aliases import deprecated_alias
from hicra.mining import paper_selection as _moved

deprecated_alias(__name__, _moved)
