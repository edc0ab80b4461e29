"""Plugins that bring HICRA to other RL engines; each lives in its own subpackage.

`verl/`: verl's `verl.plugins` entry point, an advantage estimator and trainers (docs/verl.md).
Nothing here is imported by the rest of hicra, and nothing here imports trl.
"""
