"""`python tests/faulty_train.py FAULT [FAULT ...] -- <reslab-train args>`: reslab-train with faults injected,
deterministic stand-ins for what happens at an arbitrary moment in real life:

- `STEP:SIGNAL` (e.g. `3:KILL`, `6:TERM`): the process sends itself SIGNAL in the middle of the training step
  that starts at global step STEP, after the checkpoints before it were written; in a run on several devices
  rank 0 sends it to the command (its parent), which forwards it to the ranks, and waits until it arrives
  (the ranks are fresh interpreters: tests/faultsite/sitecustomize.py gives them these faults, as it gives them to
  the workers of a sweep run by joblib);
- `enospc:NAME` (e.g. `enospc:model.pt`): the disk fills while NAME is written, after half of it;
- `fail-job:N`: job N (0-based) of a multirun raises RuntimeError after training, before its outputs;
- `slow:SECONDS`: every training step takes SECONDS longer (a run long enough to be stopped while it trains).
"""

import errno
import os
import signal
import sys
import time

from reslab import io, train
from reslab.run import outputs
from reslab.run.checkpoint import Checkpointer
from reslab.training.module import Classifier

if __name__ == "__main__":  # the command; the ranks of a run on several devices import this file (faultsite/)
    split = sys.argv.index("--")
    os.environ["RESLAB_TEST_FAULTS"] = " ".join(sys.argv[1:split])
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [os.path.join(os.path.dirname(__file__), "faultsite"), os.environ.get("PYTHONPATH")])
    )
    sys.argv = [sys.argv[0], *sys.argv[split + 1 :]]
faults = [a.split(":", 1) for a in os.environ["RESLAB_TEST_FAULTS"].split()]
signals = {int(k): getattr(signal, f"SIG{v}") for k, v in faults if k.isdigit()}
full = {v for k, v in faults if k == "enospc"}
failing = {int(v) for k, v in faults if k == "fail-job"}
slow = sum(float(v) for k, v in faults if k == "slow")

step_once = Classifier.training_step


def training_step(self, batch, batch_idx):
    time.sleep(slow)
    sig = signals.pop(self.trainer.global_step, None)
    if sig is not None and "RESLAB_RANK" not in os.environ:
        os.kill(os.getpid(), sig)
    elif sig is not None and os.environ["RESLAB_RANK"] == "0":
        os.kill(os.getppid(), sig)
        checkpointer = next(c for c in self.trainer.callbacks if isinstance(c, Checkpointer))
        deadline = time.monotonic() + 60
        while checkpointer.signum is None and time.monotonic() < deadline:
            time.sleep(0.01)
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
evaluate = outputs.evaluate  # the final evaluation (reslab.run.outputs.final_evaluation)


def failing_evaluate(*a, **k):
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.get().job.get("num") in failing:
        raise RuntimeError("simulated failure after training")
    return evaluate(*a, **k)


outputs.evaluate = failing_evaluate
if __name__ == "__main__":
    train.main()
