"""Deprecated module paths: the old name becomes the moved module itself, with a warning.

A module that moved keeps a small file at its old path that imports the new home and calls
`deprecated_alias`, so every name in it (private ones included) keeps working for one more
release. The import-layer test names each such file (tests/test_import_layers.py).
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType


def deprecated_alias(old: str, moved: ModuleType) -> None:
    """Bind the module path `old` to `moved` and warn that it moved."""
    warnings.warn(
        f"{old} is deprecated: it moved to {moved.__name__}", DeprecationWarning, stacklevel=3
    )
    sys.modules[old] = moved
