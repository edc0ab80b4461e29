"""Deprecated alias of `hicra.mining.contrastive_corpus` (the contrastive selection's contrast corpus).

A package rather than mining/contrast.py, so that git's rename detection carries edits made to the old
file over to mining/contrastive_corpus.py.

The old name is bound to the moved module itself, so every name in it keeps working.
"""

from hicra._aliases import deprecated_alias
from hicra.mining import contrastive_corpus as _moved

deprecated_alias(__name__, _moved)
