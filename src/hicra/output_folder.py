"""Output folders: create one, or say in one line why not (a file in the way, no permission).

Every command that writes a folder (train, eval, report, experiment) goes through here, so the
user sees the same words for the same problem wherever it happens.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hicra.errors import HicraError


def refuse_file(
    folder: str | os.PathLike[str], what: str = "output folder", error: type = HicraError
) -> Path:
    """`folder` as a Path; `error` if something that is not a folder is already there."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise error(f"{what} {folder} is a file, not a folder")
    return folder


def make_output_folder(
    folder: str | os.PathLike[str], what: str = "output folder", error: type = HicraError
) -> Path:
    """Create `folder` (and its parents) unless it exists; `error` names it when that fails."""
    folder = refuse_file(folder, what, error)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise error(f"cannot create the {what} {folder}: {err.strerror}") from None
    return folder


def set_aside(path: Path, prefix: str, suffix: str = "") -> Path:
    """Rename `path` (a file or a folder) to `prefix` + a time stamp + `suffix` beside it, keeping
    it instead of overwriting it: "metrics.20261206-120000.jsonl", "eval.stale-20261206-120000".

    Two set-asides in one second get "-2", "-3"...: the new name is claimed first (an empty file
    or folder made with exclusive creation), then `path` replaces the claim, so no set-aside ever
    lands on another's name (a plain rename overwrote a file, and failed on a folder).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        tail = "" if attempt == 1 else f"-{attempt}"
        target = path.with_name(f"{prefix}{stamp}{tail}{suffix}")
        try:
            if path.is_dir():
                target.mkdir()
            else:
                target.open("x").close()
        except FileExistsError:
            continue
        os.replace(path, target)  # onto the empty claim: atomic, and a folder may replace one
        return target
    raise HicraError(f"cannot find a free name to set {path} aside")
