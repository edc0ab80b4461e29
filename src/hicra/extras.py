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


def _unmet_by_name(
    requirements: Mapping[str, str], installed: Callable[[str], str | None]
) -> list[tuple[str, str]]:
    """(distribution, why in words) for each requirement that `installed` does not meet."""
    unmet = []
    for name, specifier in requirements.items():
        found = installed(name)
        if found is None:
            unmet.append((name, f"{name} is not installed"))
            continue
        try:
            ok = Version(found) in SpecifierSet(specifier, prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            unmet.append((name, f"{name} {found} is installed, {specifier} is needed"))
    return unmet


def unmet_requirements(
    requirements: Mapping[str, str], installed: Callable[[str], str | None]
) -> list[str]:
    """Each requirement that `installed` (name -> version or None) does not meet, in words."""
    return [reason for _, reason in _unmet_by_name(requirements, installed)]


def _needs(extra: str, what: str, reasons: str) -> str:
    return f"{what} needs hicra's '{extra}' extra: pip install 'hicra[{extra}]' ({reasons})"


def require_extra(
    extra: str, what: str, installed: Callable[[str], str | None] = installed_version
) -> None:
    """Raise one HicraError line naming the extra to install when `what` cannot run here."""
    unmet = unmet_requirements(EXTRAS[extra], installed)
    if unmet:
        raise HicraError(_needs(extra, what, "; ".join(unmet)))


class MissingExtra(ModuleNotFoundError):
    """A library module imported without its extra: the ImportError Python code expects (with
    `name`, the module that is missing or of the wrong version), in words naming the extra."""


def require_extra_to_import(
    extra: str, what: str, installed: Callable[[str], str | None] = installed_version
) -> None:
    """For a library module (`what`) that needs `extra`: raise MissingExtra when the extra is
    unmet (a missing package, or another version, as verl's trl pin), before an import fails
    deep inside TRL; `name` is the first unmet package."""
    unmet = _unmet_by_name(EXTRAS[extra], installed)
    if unmet:
        reasons = "; ".join(reason for _, reason in unmet)
        raise MissingExtra(_needs(extra, what, reasons), name=unmet[0][0].replace("-", "_"))


def missing_extra(extra: str, what: str, err: ModuleNotFoundError) -> MissingExtra:
    """The MissingExtra for an import that failed although the metadata said the extra is met
    (a package removed by hand, or hidden): the failed module named, the original chained."""
    return MissingExtra(_needs(extra, what, f"{err.name} cannot be imported"), name=err.name)
