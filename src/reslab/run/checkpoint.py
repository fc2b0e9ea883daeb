"""Checkpoints inside a run, so that a killed run resumes and ends with the numbers of an uninterrupted one.

Lightning's own checkpoint holds the weights, optimizer, lr schedule and loop counters. What it does not
hold is added here: the global random states (torch, CUDA, numpy, Python), the position of reslab's
DeviceLoader in its epoch (it draws from a generator of its own), and, through their state_dict
methods, the rows the probes and the recorder have gathered and the module's running sums.

Checkpoints are taken after a training step in the middle of an epoch, the one place Lightning resumes
from exactly: a step count due at an epoch's last batch is deferred to the next step. They are written
atomically (reslab.io), so a kill at any moment leaves the previous checkpoint or the new one.
SIGINT and SIGTERM stop a run at the next such point, after saving.

A run of a budget ladder (reslab.run.ladder) also keeps checkpoints at given steps, where a run of another budget of the
same net and seed can start (written once, never overwritten, committed with the run).
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import lightning as L
import numpy as np
import torch

from reslab import io
from reslab.errors import Interrupted
from reslab.run.distributed import agreed_signal


def rng_states() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_states(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def usable(path: Path) -> Path | None:
    """`path` if it holds a checkpoint this code can resume from; else None, and the file is removed (the run starts
    over: it was written by another version of reslab, or not by it)."""
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if not any(k.startswith(Checkpointer.__qualname__) for k in ckpt.get("callbacks", {})):
            raise ValueError("it lacks the random states and the loader position")
        return path
    except Exception as err:
        print(f"ignoring checkpoint {path} ({type(err).__name__}: {err}): the run starts over", flush=True)
        path.unlink(missing_ok=True)
        return None


class Checkpointer(L.Callback):
    """Saves `path` every `every` steps (0: never) and on SIGINT/SIGTERM; must come last among the callbacks,
    so that the others have finished their step when their state is saved."""

    def __init__(self, path: Path, every: int, loader, keep: dict[int, Path] | None = None):
        self.path, self.every, self.loader = Path(path), int(every), loader
        self.keep = dict(keep or {})  # step -> where its checkpoint is kept (reslab.run.ladder.keep_path)
        self.signum = None
        self._due = False
        self._keep_due: Path | None = None
        self._position = (0, 0)
        self._rng = None
        self._handlers = {}

    def state_dict(self) -> dict:
        return {"loader": self._position, "rng": rng_states()}

    def load_state_dict(self, state: dict) -> None:
        self.loader.resume_at(*state["loader"])
        self._rng = state["rng"]  # set when training starts: nothing may draw from it before the first step

    def on_train_start(self, trainer, pl_module):
        if self._rng is not None:
            set_rng_states(self._rng)
            self._rng = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._handlers[sig] = signal.signal(sig, self._stop)
            except ValueError:  # not the main thread: leave signals to whoever owns it
                pass

    def on_train_end(self, trainer, pl_module):
        self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception):
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        self._handlers = {}

    def _stop(self, signum, frame) -> None:
        self.signum = signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.every and step % self.every == 0:
            self._due = True
        if step in self.keep:
            self._keep_due = self.keep[step]
        signum = agreed_signal(trainer, self.signum)  # under DDP a signal to any rank stops all at this step
        if not (self._due or signum or self._keep_due) or step >= trainer.max_steps:
            return
        if batch_idx + 1 >= len(self.loader):  # an epoch's last batch: its end-of-epoch work is still to come
            return
        self._position = (trainer.current_epoch, batch_idx + 1)
        # Built on every rank (the module gathers its sums there, reslab.training.module), written by rank 0: every rank
        # resumes from it (the ranks' states are alike but for those sums).
        state = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        if trainer.is_global_zero:
            if self._keep_due is not None:  # named by the step it holds: one later than asked at an epoch's end
                kept = self._keep_due.with_name(self._keep_due.name.replace("{step}", str(step)))
                if not kept.exists():
                    io.save_torch(kept, state)
            if self._due or signum:
                io.save_torch(self.path, state)
        self._due, self._keep_due = False, None
        if signum:
            raise Interrupted(signum, step, self.path)
