"""One writer per run: an exclusive lock on `<run>.lock`, beside the run directory.

flock locks belong to the open file, so the kernel drops them when the process ends, however it ends
(a SIGKILL included): a lock file left on disk by a dead run locks nothing. The file itself is never
deleted, since deleting it would let two processes lock two different files of one name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


def lock_path(run: Path) -> Path:
    return run.with_name(f"{run.name}.lock")


@contextlib.contextmanager
def run_lock(run: Path) -> Iterator[bool]:
    """Yields True with the run locked for this process, or False at once if another process holds it."""
    path = lock_path(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
