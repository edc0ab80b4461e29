"""Output folders: create one, or say in one line why not (a file in the way, no permission).

Every command that writes a folder (train, eval, report, experiment) goes through here, so the
user sees the same words for the same problem wherever it happens. Names that several writers
may want at once (runs/hicra-DATE-TIME, a log set aside in the same second) are claimed here too,
by exclusive creation, never by checking first.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from hicra.errors import HicraError


def refuse_file(
    folder: str | os.PathLike[str], what: str = "output folder", error: type = HicraError
) -> Path:
    """`folder` as a Path; `error` if something that is not a folder is already there (a symbolic
    link that leads nowhere counts: mkdir would say "File exists", open "not found")."""
    folder = Path(folder)
    if folder.is_symlink() and not folder.exists():
        try:
            folder.resolve(strict=True)
            problem = "cannot be followed"
        except RuntimeError:  # Python < 3.13 raises RuntimeError for a loop
            problem = "is a symbolic link loop"
        except OSError as err:
            loop = err.errno == errno.ELOOP
            problem = (
                "is a symbolic link loop"
                if loop
                else f"is a symbolic link to {os.readlink(folder)}, which does not exist"
            )
        raise error(f"{what} {folder} {problem}; give another folder, or fix or remove the link")
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


def first_free(name: Callable[[str], Path], claim: Callable[[Path], object]) -> Path:
    """The first of name(""), name("-2"), name("-3")... that `claim` creates (an exclusive mkdir
    or open "x", failing with FileExistsError when taken): no two writers ever get one name."""
    for attempt in range(1, 1000):
        path = name("" if attempt == 1 else f"-{attempt}")
        try:
            claim(path)
        except FileExistsError:
            continue
        return path
    raise HicraError(f"no free name next to {name('')} (999 taken)")


def set_aside(path: Path, prefix: str, suffix: str = "") -> Path:
    """Rename `path` (a file or a folder) to `prefix` + a time stamp + `suffix` beside it, keeping
    it instead of overwriting it: "metrics.20261206-120000.jsonl", "eval.stale-20261206-120000".

    Two set-asides in one second get "-2", "-3"...: the new name is claimed first (an empty file
    or folder made with exclusive creation), then `path` replaces the claim, so no set-aside ever
    lands on another's name (a plain rename overwrote a file, and failed on a folder).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    claim = Path.mkdir if path.is_dir() else lambda target: target.open("x").close()
    target = first_free(lambda tail: path.with_name(f"{prefix}{stamp}{tail}{suffix}"), claim)
    os.replace(path, target)  # onto the empty claim: atomic, and a folder may replace one
    return target


# --------------------------------------------------------------------------- a full disk
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
LOW_SPACE = 1 << 20  # bytes: below this, a write error that lost its errno was a full disk


class DiskFull(HicraError):
    """The disk holding an output folder filled up; the message names the folder and what to do."""


def disk_full(err: BaseException, folder: str | os.PathLike[str]) -> bool:
    """Whether `err`, raised while writing into `folder`, means its disk (or quota) is full.

    ENOSPC/EDQUOT anywhere in the exception chain, or the words libraries put in their own
    errors (safetensors: "No space left on device"); torch.save loses the errno ("unexpected
    pos"), so an OSError or RuntimeError with less than LOW_SPACE bytes left in `folder` counts.
    """
    seen: BaseException | None = err
    for _ in range(16):  # a chain is short; a cycle of contexts ends here too
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return True
        if any(words in str(seen) for words in ("No space left on device", "Disk quota")):
            return True
        seen = seen.__cause__ or seen.__context__
    if not isinstance(err, (OSError, RuntimeError)):
        return False
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE
    except OSError:
        return False


def disk_full_error(
    err: BaseException, folder: str | os.PathLike[str], what: str, then: str
) -> DiskFull:
    """The one line for a full disk: which folder, the error in brief, and what to do `then`."""
    detail = str(err).splitlines()[0][:120] if str(err) else ""
    return DiskFull(
        f"no space left on the device of the {what} {folder} ({type(err).__name__}: {detail}); "
        f"free some space, then {then}"
    )
