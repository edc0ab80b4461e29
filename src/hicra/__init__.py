"""hicra: Hierarchy-Aware Credit Assignment (arXiv 2509.03646) for RL training of reasoning LLMs."""

from hicra.advantages import grpo_advantages, hicra_advantages
from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.metrics import fork_overlap, semantic_entropy, token_entropy_by_class
from hicra.tagging import PlanningTagger

__version__ = "0.1.0"

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
