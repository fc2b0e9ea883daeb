"""`python tests/faulty_train.py FAULT [FAULT ...] -- <reslab-train args>`: reslab-train with faults injected,
deterministic stand-ins for what happens at an arbitrary moment in real life:

- `STEP:SIGNAL` (e.g. `3:KILL`, `6:TERM`): the process sends itself SIGNAL in the middle of the training step
  that starts at global step STEP, after the checkpoints before it were written;
- `enospc:NAME` (e.g. `enospc:model.pt`): the disk fills while NAME is written, after half of it;
- `fail-job:N`: job N (0-based) of a multirun raises RuntimeError after training, before its outputs.
"""

import errno
import os
import signal
import sys

from reslab import io, train
from reslab.module import Classifier

args = sys.argv[1:]
split = args.index("--")
faults = [a.split(":", 1) for a in args[:split]]
sys.argv = [sys.argv[0], *args[split + 1:]]
signals = {int(k): getattr(signal, f"SIG{v}") for k, v in faults if k.isdigit()}
full = {v for k, v in faults if k == "enospc"}
failing = {int(v) for k, v in faults if k == "fail-job"}

step_once = Classifier.training_step


def training_step(self, batch, batch_idx):
    sig = signals.pop(self.trainer.global_step, None)
    if sig is not None:
        os.kill(os.getpid(), sig)
    return step_once(self, batch, batch_idx)


Classifier.training_step = training_step
atomic = io._atomic


def filling(path, write):
    if os.path.basename(path) not in full:
        return atomic(path, write)

    def half_then_full(tmp):
        write(tmp)
        with open(tmp, "r+b") as fh:
            fh.truncate(os.path.getsize(tmp) // 2)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return atomic(path, half_then_full)


io._atomic = filling
evaluate = train.evaluate


def failing_evaluate(*a, **k):
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.get().job.get("num") in failing:
        raise RuntimeError("simulated failure after training")
    return evaluate(*a, **k)


train.evaluate = failing_evaluate
train.main()
