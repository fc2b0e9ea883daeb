"""Per-epoch metrics to CSV (rewritten atomically each epoch) and one progress line per epoch.

The rows reach W&B through reslab.tracking.wandb_series, under the same names, not through Lightning's `log`: Lightning
would
add its own 0-based `epoch` to them."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import lightning as L
import pandas as pd

from reslab import io


def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def sweep_position() -> str:
    """'run i/N' inside a Hydra multirun (N is set by reslab.run.sweep.SweepProgress), else ''."""
    try:
        from hydra.core.hydra_config import HydraConfig

        num = HydraConfig.get().job.get("num")
    except Exception:
        num = None
    total = os.environ.get("RESLAB_SWEEP_TOTAL")
    if num is None:
        return ""
    return f"run {int(num) + 1}/{total} " if total else f"run {int(num) + 1} "


class RunRecorder(L.Callback):
    def __init__(self, path: Path, name: str, steps_per_epoch: int, total_steps: int):
        self.path, self.name = Path(path), name
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps
        self.rows: list[dict] = []
        self.where = sweep_position()
        self.t0 = self.t_epoch = None
        self.elapsed_before = self.epoch_before = 0.0  # seconds spent before a restart (timings only)
        self.start_step = 0

    def state_dict(self) -> dict:
        now = time.perf_counter()
        return {
            "rows": self.rows,
            "elapsed": self.elapsed_before + now - self.t0,
            "epoch_elapsed": self.epoch_before + now - self.t_epoch,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state["rows"])
        self.elapsed_before, self.epoch_before = state["elapsed"], state["epoch_elapsed"]

    def on_train_start(self, trainer, pl_module):
        self.t0 = self.t_epoch = time.perf_counter()
        self.start_step = trainer.global_step  # > 0 when resumed from a checkpoint

    def on_train_epoch_start(self, trainer, pl_module):
        self.t_epoch, self.epoch_before = time.perf_counter(), 0.0

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.check_finite()
        now = time.perf_counter()
        row = {
            "epoch": trainer.current_epoch + 1,
            "step": trainer.global_step,
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            **pl_module.train_epoch_stats(),
        }
        if pl_module._eval_sums is not None:
            row.update(pl_module.eval_stats())
            pl_module._eval_sums = None
        row["seconds"] = self.epoch_before + now - self.t_epoch
        row["elapsed"] = self.elapsed_before + now - self.t0
        self.rows.append(row)
        if not trainer.is_global_zero:  # DDP: every rank has the numbers (added over the ranks); rank 0 writes them
            return
        io.save_with(self.path, lambda p: pd.DataFrame(self.rows).to_csv(p, index=False))
        total_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        eta = (
            row["elapsed"] / trainer.global_step * (self.total_steps - trainer.global_step)
            if trainer.global_step
            else math.nan
        )
        test = f" test err {row['test_error']:5.1f}%" if "test_error" in row else ""
        flag = "  DIVERGED (non-finite loss)" if pl_module.diverged else ""
        print(
            f"[{self.where}{self.name}] epoch {row['epoch']}/{total_epochs} step "
            f"{trainer.global_step}/{self.total_steps}"
            f" | train err {row['train_error']:5.1f}%{test} | {row['seconds']:.0f}s/epoch | ETA "
            f"{fmt_seconds(eta)}{flag}",
            flush=True,
        )
