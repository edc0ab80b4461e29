"""Strategic-gram mining: from successful reasoning traces to a `StrategicGrams` set (`hicra mine`).

One job per module: `sources` reads traces, `ngrams` cuts them into word n-grams, `counting`
counts document frequencies in bounded memory, `clustering` groups paraphrases, `selection` scores
clusters, `pipeline` wires them together, `compare` measures a set against a reference.
"""

from hicra.mining.compare import Comparison, compare_to_reference
from hicra.mining.pipeline import Cluster, MiningConfig, MiningError, MiningResult, mine
from hicra.mining.sources import SourceError, TraceSpec

__all__ = [
    "Cluster",
    "Comparison",
    "MiningConfig",
    "MiningError",
    "MiningResult",
    "SourceError",
    "TraceSpec",
    "compare_to_reference",
    "mine",
]
