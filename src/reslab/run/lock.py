"""One writer per run: an exclusive lock on `<run>.lock`, beside the run directory, while the run is written.

flock locks belong to the open file, so the kernel drops them when the process ends, however it ends
(a SIGKILL included): a lock file a killed run leaves behind locks nothing. The holder deletes the file
when it is done, so that runs/ lists only runs; a process that locked the file just before it was deleted
holds a lock on a name no longer in use, sees that, and tries again on the file now there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


def lock_path(run: Path) -> Path:
    return run.with_name(f"{run.name}.lock")


def _acquire(path: Path) -> int | None:
    """An open descriptor of `path`, exclusively locked; None if another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the file was deleted by its previous holder after we opened it: lock the current one


@contextlib.contextmanager
def run_lock(run: Path) -> Iterator[bool]:
    """Yields True with the run locked for this process, or False at once if another process holds it."""
    path = lock_path(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path)
    if fd is None:
        yield False
        return
    try:
        yield True
    finally:
        path.unlink(missing_ok=True)  # still locked: whoever opens the name next gets a new file
        os.close(fd)
