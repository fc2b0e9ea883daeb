"""Learning curves as ResNet Fig. 6 draws them: error against iterations, from step 0.

Per-epoch numbers give a handful of points per run and none before the first update, which hides
the early phase where deep nets blow up or stall. This callback evaluates the model on two fixed,
un-augmented image sets (a slice of the training subset and a slice of the test set) at step 0
and every `every` optimizer steps, in eval mode and without gradients, so it consumes no random
numbers and leaves training bit-for-bit unchanged. It also reads the running (train-mode,
augmented) loss and error of the steps since the previous point, which is where a blow-up shows.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pandas as pd
import torch
import torch.nn.functional as F

from reslab import io


def schedule(total_steps: int, points: int, early: int = 0) -> list[int]:
    """Step 0, `points` evenly spaced steps ending at `total_steps`, and `early` extra points at
    total/2^(k+4), k = 0..early-1 (e.g. 1/16, 1/32, 1/64 of training), where deep nets blow up or stall."""
    if points <= 0 or total_steps <= 0:
        return [0]
    even = (round(total_steps * i / points) for i in range(1, points + 1))
    first = (round(total_steps / 2 ** (k + 4)) for k in range(early))
    return sorted({0, *even, *(s for s in first if s > 0)})


@torch.no_grad()
@torch.no_grad()
def error_pct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """The error in % of `model` (eval mode) on `x`, `y`, in batches: the lesion study's and the input-size probe's."""
    model.eval()
    wrong = sum(int((model(x[i : i + batch]).argmax(1) != y[i : i + batch]).sum()) for i in range(0, len(x), batch))
    return 100.0 * wrong / len(x)


def error_on(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> tuple[float, float]:
    """(mean cross-entropy, error %) of `model` in eval mode on already normalised images."""
    was = model.training
    model.eval()
    try:
        loss = errs = 0.0
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            logits = model(xb).float()
            loss += F.cross_entropy(logits, yb, reduction="sum").item()
            errs += (logits.argmax(1) != yb).sum().item()
    finally:
        model.train(was)
    return loss / len(y), 100 * errs / len(y)


class CurveProbe(L.Callback):
    """Rows of (step, lr, fixed-set train/test error and loss, running train loss/error) -> curves.csv."""

    def __init__(self, path: Path, steps: list[int], train_xy, test_xy, batch_size: int = 500):
        self.path, self.steps, self.batch_size = Path(path), set(steps), batch_size
        self.train_xy, self.test_xy = train_xy, test_xy
        self.rows: list[dict] = []

    @classmethod
    def for_run(
        cls, cfg, path: Path, steps: list[int], train, test, norm, dev, channels_last: bool, batch_size: int = 500
    ) -> "CurveProbe":
        """On fixed, class-balanced, un-augmented sets of `profile.curve` training and test images."""
        from reslab.data.arrays import stratified_subset

        def fixed(xy, n):
            x, y = xy
            idx = stratified_subset(y, int(n), int(cfg.data.subset_seed))
            xb = norm.to(dev)(x[idx].to(dev))
            return (xb.contiguous(memory_format=torch.channels_last) if channels_last else xb), y[idx].to(dev)

        c = cfg.profile.curve
        return cls(path, steps, fixed(train, c.train_images), fixed(test, c.test_images), batch_size)

    def _point(self, trainer, pl_module) -> None:
        step = trainer.global_step
        tr_loss, tr_err = error_on(pl_module.model, *self.train_xy, self.batch_size)
        te_loss, te_err = error_on(pl_module.model, *self.test_xy, self.batch_size)
        run_loss, run_err, run_n = pl_module.take_window()  # under DDP, added over the ranks: every rank calls it
        self.rows.append(
            {
                "step": step,
                "lr": trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else math.nan,
                "train_error": tr_err,
                "train_loss": tr_loss,
                "test_error": te_err,
                "test_loss": te_loss,
                "running_train_loss": run_loss,
                "running_train_error": run_err,
                "running_images": run_n,
            }
        )
        if trainer.is_global_zero:  # DDP: every rank keeps the rows (its checkpoint bookkeeping), rank 0 writes them
            io.save_with(self.path, lambda p: pd.DataFrame(self.rows).to_csv(p, index=False))

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state["rows"])

    def on_train_start(self, trainer, pl_module):
        # A resumed run starts at a step whose point, if it has one, was taken before the checkpoint.
        if trainer.global_step in self.steps and (not self.rows or self.rows[-1]["step"] != trainer.global_step):
            self._point(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step in self.steps and (not self.rows or self.rows[-1]["step"] != trainer.global_step):
            self._point(trainer, pl_module)
