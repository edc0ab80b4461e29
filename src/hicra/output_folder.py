"""Output folders: create one, or say in one line why not (a file in the way, no permission).

Every command that writes a folder (train, eval, report, experiment) goes through here, so the
user sees the same words for the same problem wherever it happens.
"""

from __future__ import annotations

import os
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
