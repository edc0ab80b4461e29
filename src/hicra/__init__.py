"""hicra: Hierarchy-Aware Credit Assignment (arXiv 2509.03646) for RL training of reasoning LLMs.

The public names are imported on first use, so that `import hicra.<module>` (the CLI, the answer
checker's worker processes) does not pay for torch unless it needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "HicraError": "hicra.errors",
    "PlanningTagger": "hicra.tagging",
    "StrategicGrams": "hicra.grams",
    "fork_overlap": "hicra.hierarchy",
    "grpo_advantages": "hicra.advantages",
    "hicra_advantages": "hicra.advantages",
    "semantic_entropy": "hicra.hierarchy",
    "token_entropy_by_class": "hicra.hierarchy",
}
__all__ = [
    "HicraError",
    "PlanningTagger",
    "StrategicGrams",
    "fork_overlap",
    "grpo_advantages",
    "hicra_advantages",
    "semantic_entropy",
    "token_entropy_by_class",
]

if TYPE_CHECKING:
    from hicra.advantages import grpo_advantages, hicra_advantages
    from hicra.errors import HicraError
    from hicra.grams import StrategicGrams
    from hicra.hierarchy import fork_overlap, semantic_entropy, token_entropy_by_class
    from hicra.tagging import PlanningTagger


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'hicra' has no attribute {name!r}")
