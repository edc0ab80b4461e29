"""Strategic-gram mining: from successful reasoning traces to a `StrategicGrams` set (`hicra mine`).

One job per module, in four rooms. Shared by both selections, at the top: `names` (the
selections and sentence labels, light enough for `hicra --help`), `sources` reads traces (with
their problem and group), `ngrams` cuts them into sentences and word n-grams, `counting` counts
document frequencies and per-gram profiles in bounded memory, `config` holds the parameters of
both selections, `pool` is pass 1 and the result types, `dispatch` checks the config and runs one
of the two pipelines. `paper/`, the paper's pipeline: `pipeline` wires it, `clustering` groups
paraphrases, `ranking` scores and keeps clusters. `contrastive/`, contrastive selection:
`pipeline` wires it, `corpus` reads the contrast corpus, `scoring` scores and tests each n-gram.
`evaluation/`, measuring a set: `reference` against a reference set, `labels` against sentence
labels of planning and execution.

The public names are imported on first use, so that `import hicra.mining.names` (the CLI) loads
neither numpy nor scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "CONTRASTIVE": "hicra.mining.names",
    "PAPER": "hicra.mining.names",
    "Cluster": "hicra.mining.pool",
    "Comparison": "hicra.mining.evaluation.reference",
    "GramChoice": "hicra.mining.pool",
    "MiningConfig": "hicra.mining.config",
    "MiningError": "hicra.mining.config",
    "MiningResult": "hicra.mining.pool",
    "SelectionRules": "hicra.mining.contrastive.scoring",
    "SourceError": "hicra.mining.sources",
    "TraceSpec": "hicra.mining.sources",
    "compare_to_reference": "hicra.mining.evaluation.reference",
    "mine": "hicra.mining.dispatch",
}
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

if TYPE_CHECKING:
    from hicra.mining.config import MiningConfig, MiningError
    from hicra.mining.contrastive.scoring import SelectionRules
    from hicra.mining.dispatch import mine
    from hicra.mining.evaluation.reference import Comparison, compare_to_reference
    from hicra.mining.names import CONTRASTIVE, PAPER
    from hicra.mining.pool import Cluster, GramChoice, MiningResult
    from hicra.mining.sources import SourceError, TraceSpec


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'hicra.mining' has no attribute {name!r}")
