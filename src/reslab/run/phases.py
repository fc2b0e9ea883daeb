"""Where a run's wall time goes besides its training steps (issue 28): process start and imports, config
composition, checks, data, model, set-up, the fit (and each probe's share of it), the final evaluations, the outputs.

A run marks the end of each phase (`mark`); the probes' Lightning hooks are timed while they fit (`time_hooks`). The
run writes what its process saw to timing.json beside its result (`write`, rank 0, after result.json): wall seconds,
so they belong to this machine and moment, never to the run's numbers or its identity. `reslab-bench`'s fixed-cost
table reads it from runs of one step (reslab.bench.fixed_cost).

Under DDP the phases before the fit are the launching process's and are not in the file (the ranks are other
processes); a resumed run's file covers the attempt that finished it.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

TIMING = "timing.json"

_marks: list[tuple[str, float]] = []  # (phase that just ended, time.time() at its end), in order
_hooks: dict[str, float] = {}  # callback class -> seconds inside its hooks
_state = {"base": None, "runs": 0}  # where the first phase starts (None: the process's start); runs begun here


def process_start() -> float | None:
    """When this process started (epoch seconds, to the kernel's clock tick), from /proc: now minus the process's age
    (the uptime less its start tick; /proc/stat's boot time is whole seconds, too coarse). None off Linux."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def mark(phase: str) -> None:
    """The phase named `phase` ended now (it began at the previous mark, or at the process's start)."""
    _marks.append((phase, time.time()))


def begin_run() -> None:
    """A run starts in this process (train.py's entry, after Hydra composed its config). The first run of a process
    is timed from the process's start (imports, composition); a later one (a joblib worker runs several) from here."""
    if _state["runs"]:
        reset()
        _state["base"] = time.time()
    else:
        mark("compose")
    _state["runs"] += 1


def time_hooks(callbacks: list) -> list:
    """The callbacks, each hook a class of theirs defines (on_*, not Lightning's no-op defaults) timed into its
    class's total. Instance attributes: Lightning looks hooks up on the instance, so the probes run unchanged."""
    import lightning as L

    for cb in callbacks:
        name = type(cb).__name__
        for attr in dir(type(cb)):
            if attr.startswith("on_") and getattr(type(cb), attr) is not getattr(L.Callback, attr, None):
                setattr(cb, attr, _timed(getattr(cb, attr), name))
    return callbacks


def _timed(fn, name: str):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _hooks[name] = _hooks.get(name, 0.0) + time.perf_counter() - t0

    return call


def record() -> dict:
    """{'phases': [{'phase', 'seconds'}], 'hooks': {callback: seconds}, 'process_start': epoch s or None}: each
    phase from the previous mark (the first from the process's start, where known)."""
    start = process_start()
    rows, before = [], _state["base"] or start
    for phase, t in _marks:
        if before is not None:
            rows.append({"phase": phase, "seconds": round(t - before, 4)})
        before = t
    return {
        "from": "run start (not the process's first run)" if _state["base"] else "process start",
        "process_start": start,
        "phases": rows,
        "hooks": {k: round(v, 4) for k, v in sorted(_hooks.items())},
    }


def write(work: Path) -> None:
    from reslab import io

    io.write_json(Path(work) / TIMING, record())


def reset() -> None:
    """Forget the marks and hook times."""
    _marks.clear()
    _hooks.clear()


def _forked() -> None:
    # A forked process (a fork-start worker; the test suite's fork server, tests/forkserver.py) inherits its parent's
    # marks, made before it existed: its imports were its parent's work, so its phases start at its own start.
    reset()
    _state.update(base=None, runs=0)


os.register_at_fork(after_in_child=_forked)
