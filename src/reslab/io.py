"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from reslab.errors import ReslabError

# A full disk or quota is the user's to fix, not a bug: one line, and the old file stays as it was.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def proc_status(field: str, pid: int | str = "self") -> str | None:
    """The value of `field` (Umask, VmHWM, SigCgt, ...) in /proc/<pid>/status; None where there is no such file or
    field (not Linux, the process has ended)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return line.split()[1]
    except (OSError, IndexError):
        pass
    return None


def umask() -> int:
    """The process umask, read without changing it (os.umask can only set it, racing other threads)."""
    value = proc_status("Umask")
    if value is not None:
        return int(value, 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp creates 0600; the file should get the mode any other file of the user gets.
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.errno in NO_SPACE:
            raise ReslabError(
                f"no space left on the device writing {str(path)!r} ({err.strerror}); "
                "nothing was written there: free space and run again"
            ) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return _atomic(path, lambda p: p.write_text(text))


def write_bytes(path: Path, data: bytes) -> Path:
    return _atomic(path, lambda p: p.write_bytes(data))


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_with(path: Path, saver: Callable[[Path], None]) -> Path:
    """Atomic write for libraries that want a file name (savefig, to_csv)."""
    return _atomic(path, saver)


def save_torch(path: Path, obj: Any) -> Path:
    """torch.save, atomically and byte-reproducibly: torch names the archive's records after the file it is
    given, and the temp name is random, so it gets a file object (records named 'archive/...')."""
    import torch

    def save(p: Path) -> None:
        with open(p, "wb") as fh:
            torch.save(obj, fh)

    return _atomic(path, save)


def save_weights(path: Path, model) -> Path:
    """A model's state_dict as contiguous CPU tensors: the same bytes whatever device and memory format trained it."""
    from collections import OrderedDict

    return save_torch(path, OrderedDict((k, v.detach().cpu().contiguous()) for k, v in model.state_dict().items()))


def save_npz(path: Path, **arrays) -> Path:
    """np.savez_compressed, atomically, with a fixed timestamp on its members, so that equal arrays give equal bytes."""
    import io as bytes_io
    import zipfile

    import numpy as np

    def save(p: Path) -> None:
        with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, arr in arrays.items():
                buf = bytes_io.BytesIO()
                np.save(buf, np.asarray(arr), allow_pickle=False)
                zf.writestr(
                    zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                    buf.getvalue(),
                    compress_type=zipfile.ZIP_DEFLATED,
                )

    return _atomic(path, save)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


class Terminated(SystemExit):
    """SIGTERM as an exception, so that `finally` blocks (temp files, locks) run before the process ends."""


def whole_lines() -> None:
    """Each printed line goes out in one write, so the lines of processes that share a terminal or a pipe (a sweep's
    workers) never interleave: with PYTHONUNBUFFERED, print writes a line's text and its newline separately."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(line_buffering=True, write_through=False)


def raise_terminated(signum, frame):
    """A signal handler: SIGTERM unwinds the stack like Ctrl-C does, instead of ending the process where it stands."""
    raise Terminated(128 + signum)


def exit_cleanly_on_sigterm() -> None:
    """raise_terminated on SIGTERM, unless the process already handles SIGTERM otherwise."""
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, raise_terminated)
    except ValueError:  # not the main thread: the process's owner decides what SIGTERM does
        pass
