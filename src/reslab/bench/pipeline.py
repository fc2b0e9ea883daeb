"""reslab's pipeline as train.py runs it, and what its probes cost a study.

The pipeline: the uint8 training tensor on the device, batches indexed, normalised, padded, cropped, flipped and laid
out there (DeviceLoader); the Classifier (device-side running sums, no host sync per step) with the profile's SGD;
the Trainer of reslab.training.trainer (train.py's), with reslab's Checkpointer. Not timed: the per-epoch RunRecorder
(no
per-step hook), the final evaluation and the layer responses (once per run, after training).

The probes fire a few times per run (the cpu profile: 16 gradient-norm points, 5 flow points, 20 curve points and 3
checkpoints in 800 steps), too rarely to land in a window of a few steps. So each one's point is timed on its own,
inside the fit, after the timed window (ProbeCosts, with the fit's trainer and the probes' real code), and the
study's cost per step is the pipeline's step plus each point's seconds times its count in a run over the run's steps.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from reslab import io
from reslab.bench.timing import step_clock, sync
from reslab.data import DeviceLoader
from reslab.data.loader import Normalizer
from reslab.probes.callback import GradNormProbe
from reslab.probes.curves import CurveProbe, schedule
from reslab.probes.flow_callback import FlowProbe
from reslab.run.checkpoint import Checkpointer
from reslab.training.device import pick_eval_batch
from reslab.training.module import Classifier
from reslab.training.recipe import Recipe
from reslab.training.trainer import make_trainer

FULL_TRAIN = {"test": 50_000, "val": 45_000}  # training images of a split when the profile takes no subset
POINTS = ("grad_norms", "flow", "curve", "checkpoint")


def study_points(cfg: DictConfig, batch: int) -> dict:
    """How often each probe fires, and how many checkpoints are written, in a run of cfg.profile at `batch`
    (train.py's schedules), and the run's optimizer steps."""
    from reslab.train import total_steps

    p, probes = cfg.profile, cfg.probes
    per_epoch = int(p.get("train_subset") or FULL_TRAIN[cfg.data.split]) // batch
    total = total_steps(p, per_epoch)
    grad_every = probes.grad_every_n_steps or max(1, per_epoch // max(1, probes.grad_points_per_epoch))
    curve = p.get("curve") or {}
    every = int(cfg.trainer.get("checkpoint_every_n_steps") or 0)
    return {
        "steps": total,
        "grad_norms": math.ceil(total / grad_every) if probes.grad_norms else 0,
        "flow": len({min(s, total - 1) for s in schedule(total, int(probes.flow_points))})
        if probes.get("flow_points")
        else 0,
        "curve": len(schedule(total, int(curve.get("points") or 0), int(curve.get("early_points") or 0)))
        if curve.get("points")
        else 0,
        "checkpoint": len(range(every, total, every)) if every else 0,
    }


class ProbeCosts(L.Callback):
    """At the end of the fit's last step (after StepClock has closed its window): the seconds of one point of each
    probe and of one checkpoint, with the fit's trainer and module. Each is called once untimed on first use."""

    def __init__(
        self, cfg: DictConfig, counts: dict, tx, ty, norm, device: torch.device, channels_last: bool, scratch: Path
    ):
        self.device, self.scratch, self.last = device, Path(scratch), 0
        self.grad = GradNormProbe(1) if counts["grad_norms"] else None
        self.flow = FlowProbe.for_run(cfg, 1, tx, ty, norm, device, channels_last) if counts["flow"] else None
        self.curve = (
            CurveProbe.for_run(
                cfg,
                self.scratch / "curves.csv",
                [0],
                (tx, ty),
                (tx, ty),
                norm,
                device,
                channels_last,
                pick_eval_batch(cfg.trainer.eval_batch_size, device.type),
            )
            if counts["curve"]
            else None
        )
        self.checkpoint = bool(counts["checkpoint"])
        self.seconds: dict | None = None
        self.enabled = True  # off: the fit runs without timing the points (bench.probe_repeats reached)
        self._warm = False

    def on_train_start(self, trainer, pl_module):
        self.done = 0

    def points(self, trainer, module, batch) -> dict:
        """One point of each probe a study runs, as the probe's own hooks take it during a step."""
        opt = trainer.optimizers[0]
        calls = {}
        if self.grad is not None:
            calls["grad_norms"] = lambda: self.grad.on_before_optimizer_step(trainer, module, opt)
        if self.flow is not None:

            def flow():
                self.flow.steps = {trainer.global_step}
                self.flow.on_train_batch_start(trainer, module, batch, 0)
                self.flow.on_before_optimizer_step(trainer, module, opt)
                self.flow.on_train_batch_end(trainer, module, None, batch, 0)

            calls["flow"] = flow
        if self.curve is not None:
            calls["curve"] = lambda: self.curve._point(trainer, module)
        if self.checkpoint:
            # What reslab's Checkpointer writes every `checkpoint_every_n_steps`.
            calls["checkpoint"] = lambda: io.save_torch(
                self.scratch / "checkpoint.pt", trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            )
        return calls

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.done += 1
        if self.done != self.last:
            return
        calls = self.points(trainer, pl_module, batch)
        if not self._warm:
            for fn in calls.values():
                fn()
            self._warm = True
        self.seconds = {}
        for name, fn in calls.items():
            sync(self.device)
            t0 = time.perf_counter()
            fn()
            sync(self.device)
            self.seconds[name] = time.perf_counter() - t0


def reslab_fit(
    cfg: DictConfig,
    model: torch.nn.Module,
    tx: torch.Tensor,
    ty: torch.Tensor,
    batch: int,
    device: str,
    channels_last: bool,
    precision: str,
    scratch: Path,
    probe_counts: dict | None = None,
):
    """(measure, costs): measure(warmup, steps) -> seconds of `steps` steps of a reslab fit (a new Trainer each call);
    costs.seconds after each call, given `probe_counts` (study_points), the seconds of one point of each probe that a
    study runs (else costs is None)."""
    dev = torch.device(device)
    norm = Normalizer.fit(tx, cfg.data.normalize)
    loader = DeviceLoader(
        tx.to(dev),
        ty.to(dev),
        norm,
        batch,
        train=True,
        seed=int(cfg.seed),
        pad=cfg.data.pad,
        flip=cfg.data.flip,
        channels_last=channels_last,
    )
    # The run's optimizer and step schedule over the timed steps, without its warm-up and WSD decay: the bench times
    # steps, and the lr's value does not change a step's cost.
    p = cfg.profile
    recipe = Recipe(
        lr=p.lr,
        momentum=p.momentum,
        weight_decay=p.weight_decay,
        nesterov=p.nesterov,
        total_steps=len(loader),
        milestones=tuple(p.milestones),
        gamma=p.gamma,
    )
    module = Classifier(model, recipe)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    module.to(dev)
    scratch.mkdir(parents=True, exist_ok=True)
    # The probes' fixed sets from host tensors, as train.py builds them (they move them to the device).
    costs = ProbeCosts(cfg, probe_counts, tx, ty, norm, dev, channels_last, scratch) if probe_counts else None

    def measure(warmup: int, steps: int) -> float:
        clock = step_clock(warmup, steps, dev)
        if costs is not None:
            costs.last = warmup + steps if costs.enabled else -1
        checkpointer = Checkpointer(
            scratch / "run-checkpoint.pt", int(cfg.trainer.get("checkpoint_every_n_steps") or 0), loader
        )
        # The clock after the Checkpointer: a step's window holds every callback of the step.
        trainer = make_trainer(
            cfg,
            device,
            precision,
            warmup + steps,
            len(loader),
            0,
            [checkpointer, clock] + ([costs] if costs is not None else []),
        )
        trainer.fit(module, train_dataloaders=loader)
        return clock.seconds

    return measure, costs
