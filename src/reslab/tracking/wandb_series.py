"""The series a run logs to W&B, as a Lightning callback: the same quantities as the run's CSVs, under the names
of reslab.tracking.wandb_keys, against Lightning's step.

- every `logger.log_every_n_steps` optimizer steps: the mean training loss of those steps and the learning rate;
- every epoch: the row of metrics.csv (RunRecorder), same names;
- at every gradient-probe point: grad_norm/<layer> (GradNormProbe, grad_norms.csv);
- at every flow-probe point: update/<layer>, the relative weight update (FlowProbe, updates.csv).

The loss is summed on the device and read once per interval: reading it every step would stall an accelerator.
Under DDP only rank 0 has a logger (train.fit_logged): its step loss is the mean over its share of each batch, while
the epoch keys are added over all ranks (reslab.training.module), as metrics.csv holds them.
Rows are mirrored from the callbacks that write the CSVs, so a run resumed from a checkpoint logs the rows its
checkpoint restored into its new W&B run, and the W&B run holds what the CSVs hold.
"""

from __future__ import annotations

from itertools import groupby

import lightning as L

from reslab.tracking.wandb_keys import EPOCH_KEYS, STEP_LOSS, STEP_LR, grad_norm_key, layer_id, update_key


class WandbSeries(L.Callback):
    def __init__(self, logger, every_n_steps: int, recorder, grads=None, flow=None):
        self.logger, self.every = logger, max(1, int(every_n_steps))
        self.recorder, self.grads, self.flow = recorder, grads, flow
        self._sum, self._steps, self._lr = None, 0, None
        self._logged_step = None
        self._seen = {"epoch": 0, "grad": 0, "update": 0}

    @classmethod
    def for_run(cls, cfg, logger, recorder, grads=None, flow=None) -> "WandbSeries | None":
        if logger is None:
            return None
        return cls(logger, cfg.logger.log_every_n_steps, recorder, grads, flow)

    # -- the step series ---------------------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._lr = trainer.optimizers[0].param_groups[0]["lr"]  # the rate this step uses (the scheduler runs after it)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            loss = loss.detach().float()
            self._sum = loss if self._sum is None else self._sum + loss  # on the device: no host sync
            self._steps += 1
        step = trainer.global_step
        if step % self.every == 0 and step != self._logged_step:
            self._log_window(step)
        self._mirror_rows()

    def _log_window(self, step: int) -> None:
        if self._steps:
            self.logger.log_metrics({STEP_LOSS: float(self._sum) / self._steps, STEP_LR: self._lr}, step=step)
        self._sum, self._steps, self._logged_step = None, 0, step

    # -- rows of the CSV writers -------------------------------------------------------------------
    def _new(self, kind: str, rows: list) -> list:
        new = rows[self._seen[kind] :]
        self._seen[kind] = len(rows)
        return new

    def _mirror_rows(self) -> None:
        for row in self._new("epoch", self.recorder.rows):
            self.logger.log_metrics({k: row[k] for k in EPOCH_KEYS if k in row}, step=row["step"])
        if self.grads is not None:
            self._per_layer(self._new("grad", self.grads.rows), grad_norm_key, "grad_norm")
        if self.flow is not None:
            self._per_layer(self._new("update", self.flow.update_rows), update_key, "rel_update")

    def _per_layer(self, rows: list, key, column: str) -> None:
        for step, group in groupby(rows, key=lambda r: r["step"]):
            self.logger.log_metrics({key(layer_id(r["layer"], r["name"])): r[column] for r in group}, step=step)

    def on_train_start(self, trainer, pl_module):
        self._mirror_rows()  # rows a resumed run restored from its checkpoint

    def on_train_epoch_end(self, trainer, pl_module):
        self._mirror_rows()  # after RunRecorder, which appends the epoch's row now

    def on_train_end(self, trainer, pl_module):
        if self._steps:
            self._log_window(trainer.global_step)  # the steps after the last full interval
        self._mirror_rows()
