"""A sweep whose runs are in joblib's worker processes (`JOBS=2`) stops on SIGINT/SIGTERM as a single run does:
every run in progress saves its checkpoint and stops, and no worker is left behind.

Without this, SIGTERM to the launching process alone (`kill`, `timeout`, a scheduler that signals one process)
ended it where it stood and left its workers training as orphans; and on Ctrl-C the launcher's KeyboardInterrupt
made joblib SIGKILL the workers at once, often before they had saved. Now:

- in the launcher (`StopForwarding`, a Hydra callback): a stop signal is passed on to the workers that are running a
  run, and the launcher waits until each has saved and stopped before it ends (joblib then kills the idle workers);
- in a worker (`worker_run`, around each run): SIGTERM is caught while a run is in progress, which is also how the
  launcher tells busy workers from idle ones (the SigCgt mask in /proc); a run stopped by a signal clears that mark
  and waits for the launcher to end the worker, instead of returning and being handed the sweep's next run;
  if the launcher dies, however it dies, the kernel sends the worker SIGTERM (PR_SET_PDEATHSIG), so the run saves
  and the worker exits.

Linux only (/proc, prctl); elsewhere a stop signal does what it did before.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Iterator

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from reslab import io
from reslab.paths import TRAIN_JOB

GRACE_SECONDS = 120  # a step of the largest CPU net and a checkpoint take seconds; this bounds a worker that hangs
PARK_SECONDS = 30  # a worker stopped on its own (its launcher was not signalled) returns after this, as it used to
PR_SET_PDEATHSIG = 1


def in_worker() -> bool:
    return multiprocessing.current_process().name.startswith("LokyProcess")  # joblib's (loky's) worker processes


def on_parent_death(signum: int) -> bool:
    """Have the kernel send this process `signum` when its parent dies, however it dies; False where it cannot."""
    try:
        import ctypes

        return ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signum)) == 0  # Linux
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def worker_run() -> Iterator[None]:
    """Around one run: in a joblib worker, the run stops cleanly when its sweep is stopped (module docstring)."""
    if not in_worker():
        yield
        return
    io.whole_lines()
    launcher = os.getppid()
    on_parent_death(signal.SIGTERM)  # the run saves and stops
    signal.signal(signal.SIGTERM, io.raise_terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    except (SystemExit, KeyboardInterrupt) as stop:
        _idle()
        _wait_for(launcher, stop)
        raise
    finally:
        _idle()


def _idle() -> None:
    """Between runs, and once its run has saved and stopped, a worker has nothing to save: stop signals are ignored
    (which also tells the launcher that it is not busy: busy_workers), and it dies with its launcher."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    on_parent_death(signal.SIGKILL)


def _wait_for(launcher: int, stop: BaseException) -> None:
    deadline = time.monotonic() + PARK_SECONDS
    while time.monotonic() < deadline:
        if os.getppid() != launcher:  # it died before on_parent_death: nobody will read this worker's result
            code = stop.code if isinstance(stop, SystemExit) and isinstance(stop.code, int) else 128 + signal.SIGINT
            os._exit(code)
        time.sleep(0.1)


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in task.read_text().split()]
    return out


def _catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (the SigCgt mask of /proc/<pid>/status)."""
    mask = io.proc_status("SigCgt", pid)
    return mask is not None and bool(int(mask, 16) >> (signum - 1) & 1)


def busy_workers(pid: int) -> list[int]:
    """The children of `pid` with a run in progress: those that catch SIGTERM (worker_run marks them so)."""
    return [c for c in _children(pid) if _catches(c, signal.SIGTERM)]


def stop_workers(signum: int, grace: float = GRACE_SECONDS) -> list[int]:
    """Pass `signum` on to this process's busy workers and wait until each has saved and stopped (or `grace`
    seconds); returns the workers still busy then. A worker that becomes busy meanwhile (joblib hands the sweep's
    next run to a worker whose run had just finished) gets the signal too."""
    deadline = time.monotonic() + grace
    was_busy: set[int] = set()
    while True:
        busy = set(busy_workers(os.getpid()))
        for pid in busy - was_busy:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        was_busy = busy
        if not busy or time.monotonic() >= deadline:
            return sorted(busy)
        time.sleep(0.1)


class StopForwarding(Callback):
    """In the launching process of a sweep run by joblib's workers: SIGINT/SIGTERM stop the runs in progress cleanly
    (stop_workers), then end the sweep as the signal would have."""

    def __init__(self):
        self._old: dict[int, object] = {}

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        launcher = str(config.hydra.launcher.get("_target_", ""))
        if config.hydra.job.name != TRAIN_JOB or "JoblibLauncher" not in launcher or not Path("/proc/self").is_dir():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: whoever owns it decides
                self._old[sig] = signal.signal(sig, self._stop)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}

    def _stop(self, signum, frame) -> None:
        for sig, handler in self._old.items():  # a second signal ends the launcher at once
            signal.signal(sig, handler if sig == signal.SIGINT else io.raise_terminated)
        left = stop_workers(signum)
        name = signal.Signals(signum).name
        if left:
            print(
                f"reslab: sweep stopped by {name}; workers {left} did not stop within {GRACE_SECONDS}s and are "
                "killed (their runs resume from their last periodic checkpoint)",
                file=sys.stderr,
                flush=True,
            )
        else:
            print(
                f"reslab: sweep stopped by {name}; every run in progress saved its checkpoint; run the same "
                "command again to resume",
                file=sys.stderr,
                flush=True,
            )
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise io.Terminated(128 + signum)
