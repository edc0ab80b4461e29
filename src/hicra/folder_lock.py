"""One writer per output folder: an advisory lock held for as long as a process writes there.

`hicra train` holds it on its run folder, `hicra eval` on its output folder, `hicra experiment` on
the experiment folder. A second writer gets a clear error naming the holder's PID instead of
interleaving lines with it. The lock is `flock` on FOLDER/.lock: the kernel drops it when the
holder exits, however it exits, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from hicra.errors import HicraError

LOCK_FILE = ".lock"


class FolderBusy(HicraError):
    """Another process is writing to the folder."""


class FolderLock:
    """An exclusive, non-blocking lock on a folder (a context manager; re-entrant per process)."""

    _held: ClassVar[dict[Path, FolderLock]] = {}

    def __init__(self, folder: str | os.PathLike[str], what: str = "folder") -> None:
        self.folder = Path(folder).resolve()
        self.what = what
        self._handle: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    def acquire(self) -> FolderLock:
        if self.folder in FolderLock._held:  # this process holds it already (a nested writer)
            return self
        try:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise HicraError(f"cannot write to {self.folder}: {err.strerror}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(handle)
            os.close(handle)
            who = f"process {holder}" if holder else "another process"
            raise FolderBusy(
                f"{self.what} {self.folder} is in use by {who}: one writer per folder; wait for "
                "it to finish, or use another folder"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        self._handle = handle
        FolderLock._held[self.folder] = self
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        FolderLock._held.pop(self.folder, None)
        with contextlib.suppress(OSError):
            os.ftruncate(self._handle, 0)
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        os.close(self._handle)
        self._handle = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(handle: int) -> int | None:
    try:
        text = os.pread(handle, 32, 0).decode("ascii", errors="ignore").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
