"""The public home of the trainer (`from hicra.trainer import HICRAConfig, HICRATrainer`).

The code lives in the train wing: `hicra.train.config` and `hicra.train.hicra_trainer` (the class,
wiring the modules that do its jobs). It needs the `train` extra (TRL 1.16); without it this import
raises MissingExtra, a ModuleNotFoundError whose text is the pip command, not an error from inside
another TRL.
"""

from hicra.extras import missing_extra, require_extra_to_import

require_extra_to_import("train", "hicra.trainer")
try:
    from hicra.train.config import HICRAConfig
    from hicra.train.hicra_trainer import HICRATrainer
except ModuleNotFoundError as err:
    raise missing_extra("train", "hicra.trainer", err) from err

__all__ = ["HICRAConfig", "HICRATrainer"]
