"""The LightningModule: cross-entropy classification with the paper's SGD recipe.

Per-epoch sums live on the device as tensors and are read once per epoch, so the training step
never waits on a host sync. A non-finite loss marks the run diverged and stops it: some shortcut
variants are expected to fail (Identity Mappings Table 1), and a study must record that, not crash.

Under DDP (reslab.run.distributed) each rank sums its share of the batches; the sums are added over the ranks
where they are read (the strategy's reduce: nothing to add on one device), at the same batches on every rank.
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F

from reslab.training.recipe import Recipe


class Classifier(L.LightningModule):
    def __init__(self, model: torch.nn.Module, recipe: Recipe):
        super().__init__()
        self.model = model
        self.recipe = recipe  # the optimizer and the lr schedule (reslab.training.recipe): read, never rebuilt here
        self.diverged = False
        self.check_every = 25
        self._train_sums = None
        self._eval_sums = None
        self._window_sums, self._window_n = None, 0

    def forward(self, x):
        return self.model(x)

    # -- training ------------------------------------------------------------------------------
    def on_train_epoch_start(self):
        # Loss and error sums stay on the device; the image count is known on the host, so the step
        # never copies a scalar to the device.
        self._train_sums, self._train_n = torch.zeros(2, device=self.device), 0

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y)
        with torch.no_grad():
            errs = (logits.argmax(1) != y).sum()
            sums = torch.stack([loss.detach() * len(y), errs.float()])
            self._train_sums += sums
            self._window_sums = sums if self._window_sums is None else self._window_sums + sums
        self._train_n += len(y)
        self._window_n += len(y)
        # Reading the loss on the host every step would stall an accelerator; a NaN persists in the
        # running sum, so checking it now and then (and at epoch end) loses nothing.
        if batch_idx % self.check_every == 0:
            self.check_finite()
        return loss

    def check_finite(self) -> bool:
        bad = self._train_sums is not None and not bool(torch.isfinite(self._train_sums[0]))
        # Every rank stops at once: one that stopped alone would leave the others in the next all-reduce.
        if self.trainer.strategy.reduce_boolean_decision(bad, all=False):
            self.diverged = True
            self.trainer.should_stop = True
        return not self.diverged

    def _total(self, sums, n: int) -> list[float]:
        """[loss sum, errors, images] over all ranks."""
        both = torch.cat(
            [
                sums if sums is not None else torch.zeros(2, device=self.device),
                torch.tensor([float(n)], device=self.device),
            ]
        )
        return self.trainer.strategy.reduce(both, reduce_op="sum").tolist()

    def train_epoch_stats(self) -> dict:
        if self._train_sums is None:
            return {"train_loss": math.nan, "train_error": math.nan}
        loss, errs, n = self._total(self._train_sums, self._train_n)
        return {"train_loss": loss / n if n else math.nan, "train_error": 100 * errs / n if n else math.nan}

    def take_window(self) -> tuple[float, float, int]:
        """(mean loss, error %, images) of the training steps since the last call; resets the window."""
        loss, errs, n = self._total(self._window_sums, self._window_n)
        self._window_sums, self._window_n = None, 0
        if not n:
            return math.nan, math.nan, 0
        return loss / n, 100 * errs / n, int(n)

    # -- evaluation ----------------------------------------------------------------------------
    def on_validation_epoch_start(self):
        self._eval_sums, self._eval_n = torch.zeros(2, device=self.device), 0

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, reduction="sum")
        errs = (logits.argmax(1) != y).sum()
        self._eval_sums += torch.stack([loss, errs.float()])
        self._eval_n += len(y)

    def eval_stats(self) -> dict:
        loss, errs = self._eval_sums.tolist() if self._eval_sums is not None else (math.nan, math.nan)
        n = self._eval_n if self._eval_sums is not None else 0
        return {"test_loss": loss / n if n else math.nan, "test_error": 100 * errs / n if n else math.nan}

    # -- checkpoints ---------------------------------------------------------------------------
    # A checkpoint falls in the middle of an epoch: the epoch's running sums must survive it, or the
    # resumed epoch's training error would count only the batches after the restart.
    SUMS = ("_train_sums", "_train_n", "_window_sums", "_window_n", "_eval_sums", "_eval_n", "diverged")

    # Under DDP the checkpoint holds rank 0's state: the running sums are first gathered on rank 0 and the other
    # ranks go on from zero, so the totals, the epoch's numbers, are the same whether the run goes on or resumes.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.trainer.world_size > 1:
            for sums, n in (("_train_sums", "_train_n"), ("_window_sums", "_window_n")):
                total = self._total(getattr(self, sums), getattr(self, n))
                self._restart_sums(sums, n, total if self.global_rank == 0 else None)
        checkpoint["reslab_sums"] = {
            k: (v.cpu() if torch.is_tensor(v) else v) for k, v in ((k, getattr(self, k, None)) for k in self.SUMS)
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        for k, v in checkpoint.get("reslab_sums", {}).items():
            setattr(self, k, v)
        if self.global_rank > 0:  # the sums saved are all ranks' (rank 0's after gathering)
            for sums, n in (("_train_sums", "_train_n"), ("_window_sums", "_window_n")):
                if getattr(self, sums, None) is not None:
                    self._restart_sums(sums, n, None)

    def _restart_sums(self, sums: str, n: str, total: list[float] | None) -> None:
        setattr(self, sums, torch.tensor(total[:2] if total else [0.0, 0.0], device=self.device))
        setattr(self, n, int(total[2]) if total else 0)

    def on_train_start(self):
        for k in self.SUMS:  # sums restored from a checkpoint were saved on the CPU
            v = getattr(self, k, None)
            if torch.is_tensor(v):
                setattr(self, k, v.to(self.device))
        self.lr_from_schedule()

    def lr_from_schedule(self) -> None:
        """The lr of the next step from this run's own schedule. A restored optimizer holds the lr its checkpoint's
        run had set for that step; on a budget ladder (reslab.run.ladder) that run may be another rung, already in its
        decay. For a run resumed from its own checkpoint this sets the value it holds (LambdaLR's own product)."""
        for config in self.trainer.lr_scheduler_configs:
            sched = config.scheduler
            lrs = [base * fn(sched.last_epoch) for base, fn in zip(sched.base_lrs, sched.lr_lambdas)]
            for group, lr in zip(sched.optimizer.param_groups, lrs):
                group["lr"] = lr
            sched._last_lr = lrs

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self):
        opt = torch.optim.SGD(self.model.parameters(), **self.recipe.optimizer_args())
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: self.recipe.factor(step))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
