"""Strategic-gram mining: from successful reasoning traces to a `StrategicGrams` set (`hicra mine`).

One job per module: `sources` reads traces (with their problem and group), `ngrams` cuts them into
sentences and word n-grams, `counting` counts document frequencies and per-gram profiles in
bounded memory, `config` holds the parameters of both selections, `pipeline` wires the paper's
pipeline (`clustering` groups paraphrases, `selection` scores clusters) and dispatches,
`contrastive` wires contrastive selection (`contrast` reads the contrast corpus, `scoring` scores
and tests each n-gram), `compare` measures a set against a reference, `evaluation` measures it
against sentence labels of planning and execution.
"""

from hicra.mining.compare import Comparison, compare_to_reference
from hicra.mining.config import CONTRASTIVE, PAPER, MiningConfig, MiningError
from hicra.mining.pipeline import mine
from hicra.mining.pool import Cluster, GramChoice, MiningResult
from hicra.mining.scoring import SelectionRules
from hicra.mining.sources import SourceError, TraceSpec

__all__ = [
    "CONTRASTIVE",
    "PAPER",
    "Cluster",
    "Comparison",
    "GramChoice",
    "MiningConfig",
    "MiningError",
    "MiningResult",
    "SelectionRules",
    "SourceError",
    "TraceSpec",
    "compare_to_reference",
    "mine",
]
