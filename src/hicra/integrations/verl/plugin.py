"""The `verl.plugins` entry point: `import verl` imports this module in every verl process.

It registers the `hicra` advantage estimator and the trainers `hicra_sync`,
`hicra_colocate_async` and `hicra_separate_async`. verl logs a plugin that fails to load only at
debug level, so the failure would surface much later as "Unknown trainer 'hicra_sync'"; this
module logs it as an error with its cause first. A verl outside the tested range is a warning.
"""

from __future__ import annotations

import contextlib
import logging
from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

SUPPORTED_VERL = (Version("0.9.1"), Version("0.10"))  # [lowest, first unsupported)

logger = logging.getLogger("hicra.integrations.verl")


def check_verl_version(found: str) -> bool:
    """Whether `found` is in the tested range; outside it a warning says so."""
    low, high = SUPPORTED_VERL
    if low <= Version(found) < high:
        return True
    logger.warning(
        "hicra's verl plugin is tested with verl >=%s,<%s; found verl %s", low, high, found
    )
    return False


try:
    from hicra.integrations.verl import trainers  # noqa: F401  (registers the trainers)
    from hicra.integrations.verl.estimator import register_estimator

    register_estimator()
    with contextlib.suppress(PackageNotFoundError):  # a source checkout: nothing to compare
        check_verl_version(version("verl"))
except Exception:
    logger.exception(
        "hicra's verl plugin failed to load: trainer.v1.trainer_mode=hicra_* and "
        "algorithm.adv_estimator=hicra are not available"
    )
    raise
