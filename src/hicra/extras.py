"""hicra's optional parts and what each needs, checked before a command imports them.

The core (tagger, credit rules, hierarchy metrics, mining, report, eval, the verl plugin) needs
no TRL, so the plugin installs beside verl's training extras, which pin an older trl. `hicra
train` and `hicra experiment run` need the `train` extra; without it (or with another trl, as in
a verl environment) they stop with one line naming the extra, before anything is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from hicra.errors import HicraError

# Equal to pyproject.toml's [project.optional-dependencies] (tests/test_packaging.py checks it).
EXTRAS: Mapping[str, Mapping[str, str]] = {
    "train": {
        "trl": ">=1.16,<1.17",
        "accelerate": ">=1.10",
        "peft": ">=0.17",
        "reasoning-gym": ">=0.1.20",
    },
}


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def unmet_requirements(
    requirements: Mapping[str, str], installed: Callable[[str], str | None]
) -> list[str]:
    """Each requirement that `installed` (name -> version or None) does not meet, in words."""
    unmet = []
    for name, specifier in requirements.items():
        found = installed(name)
        if found is None:
            unmet.append(f"{name} is not installed")
            continue
        try:
            ok = Version(found) in SpecifierSet(specifier, prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            unmet.append(f"{name} {found} is installed, {specifier} is needed")
    return unmet


def require_extra(
    extra: str, what: str, installed: Callable[[str], str | None] = installed_version
) -> None:
    """Raise one HicraError line naming the extra to install when `what` cannot run here."""
    unmet = unmet_requirements(EXTRAS[extra], installed)
    if unmet:
        raise HicraError(
            f"{what} needs hicra's '{extra}' extra: pip install 'hicra[{extra}]' "
            f"({'; '.join(unmet)})"
        )
