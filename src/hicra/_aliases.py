"""Deprecated module paths: the old name becomes the moved module itself, with a warning.

A module that moved keeps a small file at its old path that imports the new home and calls
`deprecated_alias`, so every name in it (private ones included) keeps working for one more
release. The import-layer test names each such file (tests/test_import_layers.py).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any


def deprecated_alias(old: str, moved: ModuleType) -> None:
    """Bind the module path `old` to `moved` and warn that it moved."""
    warnings.warn(
        f"{old} is deprecated: it moved to {moved.__name__}", DeprecationWarning, stacklevel=3
    )
    sys.modules[old] = moved


def moved_names(
    module: str, names: Iterable[str], new_home: Callable[[], ModuleType]
) -> Callable[[str], Any]:
    """A module `__getattr__` for `names` that moved out of `module`: each access warns and is
    looked up in `new_home()` (a function with the import in it, so the import-layer test sees
    the edge)."""
    moved = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in moved:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home = new_home()
        warnings.warn(
            f"{module}.{name} is deprecated: it moved to {home.__name__}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(home, name)

    return __getattr__
