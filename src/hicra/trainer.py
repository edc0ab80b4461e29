"""The public home of the trainer (`from hicra.trainer import HICRAConfig, HICRATrainer`).

The code lives in the train wing: `hicra.train.config` and `hicra.train.trainer`.
"""

from hicra.train.config import HICRAConfig
from hicra.train.trainer import HICRATrainer

__all__ = ["HICRAConfig", "HICRATrainer"]
