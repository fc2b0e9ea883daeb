"""Gradient norms during training, a few points per epoch, as a Lightning callback."""

from __future__ import annotations

import lightning as L

from reslab.probes.gradients import grad_norm_rows, weight_layers


class GradNormProbe(L.Callback):
    """Records per-layer gradient norms every `every_n_steps` optimizer steps.

    Reads the gradients Lightning already computed (just before the optimizer step), so the
    cost is one fused norm over the weight gradients and one host copy per probe point.
    """

    def __init__(self, every_n_steps: int):
        self.every = max(1, int(every_n_steps))
        self.rows: list[dict] = []
        self._layers = None

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state["rows"])

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        step = trainer.global_step
        if step % self.every:
            return
        if self._layers is None:
            self._layers = weight_layers(pl_module.model)
        epoch = trainer.current_epoch
        for row in grad_norm_rows(pl_module.model, self._layers):
            self.rows.append({"step": step, "epoch": epoch, **row})
