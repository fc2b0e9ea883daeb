"""The backward signal and the update sizes during training, with the init probe's design.

At each probe step (step 0 and evenly spaced steps to the end, as the curves, and the explicit steps of
`probes.flow_window` where a study asks for them: the first updates, where warm-up ends and deep nets blow up or
split, issue 25) this callback
- measures the RMS of dL/dh at every block output on the same fixed batches for every run of a study
  (reslab.probes.signal, as `reslab-gradflow` does at initialisation), without changing training:
  BN running statistics and the random state are saved and restored around the probe;
  the loss on those batches (train-mode BN, as the gradients) is recorded beside them;
- measures the relative update of every conv/linear weight made by that step's optimizer step,
  |w_after - w_before| / |w_before|: what "early layers update slowly" means, measured.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn as nn

from reslab.probes.gradients import weight_layers
from reslab.probes.signal import backward_signal


def _bn_state(model: nn.Module) -> list[tuple[nn.Module, dict]]:
    return [
        (m, {k: v.clone() for k, v in m.state_dict().items()})
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


class FlowProbe(L.Callback):
    def __init__(self, steps: list[int], batches):
        self.steps, self.batches = set(steps), batches
        self.signal_rows: list[dict] = []
        self.update_rows: list[dict] = []
        self._before = None

    @staticmethod
    def probe_steps(steps: int, points: int, window=None) -> list[int]:
        """Step 0 and `points` evenly spaced steps to the end, and every step of `window` (an explicit list, e.g. the
        first updates) that the run reaches: a run of `steps` optimizer steps has steps 0 .. steps - 1."""
        from reslab.probes.curves import schedule

        # The last optimizer step is steps - 1: a probe "at the end" measures the net before its final update.
        even = {min(s, steps - 1) for s in schedule(steps, points)}
        return sorted(even | {int(s) for s in (window or []) if 0 <= int(s) < steps})

    @classmethod
    def for_run(cls, cfg, steps: int, tx, ty, norm, dev, channels_last: bool) -> "FlowProbe":
        """At `probes.flow_points` steps and the steps of `probes.flow_window` (none unless a study sets it), on the
        same augmented batches for every run (seed 0 of the loader over the training images), as the init probe."""
        from reslab.data import DeviceLoader

        loader = DeviceLoader(
            tx.to(dev),
            ty.to(dev),
            norm,
            int(cfg.probes.flow_batch_size),
            train=True,
            seed=0,
            pad=cfg.data.pad,
            flip=cfg.data.flip,
            channels_last=channels_last,
        )
        batches = [b for _, b in zip(range(int(cfg.probes.flow_batches)), loader)]
        return cls(cls.probe_steps(steps, int(cfg.probes.flow_points), cfg.probes.get("flow_window")), batches)

    def state_dict(self) -> dict:
        return {"signal_rows": self.signal_rows, "update_rows": self.update_rows}

    def load_state_dict(self, state: dict) -> None:
        self.signal_rows, self.update_rows = list(state["signal_rows"]), list(state["update_rows"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        step = trainer.global_step
        if step not in self.steps:
            return
        model = pl_module.model
        bn, rng = _bn_state(model), torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        try:
            for r in backward_signal(model, self.batches):
                self.signal_rows.append({"step": step, **r})
        finally:
            for m, state in bn:
                m.load_state_dict(state)
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step in self.steps:
            self._before = [
                (i, n, k, m.weight.detach().clone()) for i, (n, m, k) in enumerate(weight_layers(pl_module.model))
            ]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._before is None:
            return
        layers = weight_layers(pl_module.model)
        step = trainer.global_step - 1  # the step whose update this is
        n = len(layers)
        for i, name, kind, w0 in self._before:
            w1 = layers[i][1].weight.detach()
            base = float(w0.norm())
            self.update_rows.append(
                {
                    "step": step,
                    "layer": i,
                    "rel_layer": i / max(1, n - 1),
                    "name": name,
                    "kind": kind,
                    "rel_update": float((w1 - w0).norm()) / base if base else float("nan"),
                }
            )
        self._before = None
