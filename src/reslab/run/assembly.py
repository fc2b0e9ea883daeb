"""What one run trains with besides the model and its recipe: its loaders on the device, its callbacks (probes,
recorder, checkpointer), and, once training has ended, the outputs and result.json (rank 0). train.py assembles
them; each piece is built in the order the run's numbers depend on (seeded model first, then loaders, then probes)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reslab import io
from reslab.data import DeviceLoader
from reslab.probes.curves import schedule
from reslab.run import distributed, ladder, outputs, phases, runinfo
from reslab.run.context import RunContext
from reslab.training.device import pick_eval_batch
from reslab.training.recipe import Recipe


@dataclass(frozen=True)
class Loaders:
    """The run's training loader (this rank's part of every batch under DDP) and its eval loader, on the device."""

    train: DeviceLoader
    eval: DeviceLoader
    eval_batch: int
    dev: torch.device
    channels_last: bool

    @classmethod
    def of(cls, run: RunContext, data: dict) -> Loaders:
        cfg, dev = run.cfg, torch.device(run.device)
        channels_last = bool(cfg.trainer.channels_last)
        train_loader = DeviceLoader(
            data["tx"].to(dev),
            data["ty"].to(dev),
            data["norm"],
            cfg.profile.batch_size,
            train=True,
            seed=int(cfg.seed),
            pad=cfg.data.pad,
            flip=cfg.data.flip,
            channels_last=channels_last,
            **distributed.shard(),
        )
        eval_batch = pick_eval_batch(cfg.trainer.eval_batch_size, run.device)
        eval_loader = DeviceLoader(
            data["ex"].to(dev), data["ey"].to(dev), data["norm"], eval_batch, train=False, channels_last=channels_last
        )
        return cls(train_loader, eval_loader, eval_batch, dev, channels_last)


@dataclass
class Probes:
    """The run's callbacks: the gradient-norm, backward-signal and curve probes (each off when its profile says so),
    the per-epoch recorder, the W&B series (attached by train.py: tracking sits above run/), and the Checkpointer."""

    grad: object | None
    grad_every: int
    flow: object | None
    curves: object | None
    curve_steps: list
    recorder: object
    series: object | None
    checkpointer: object

    @classmethod
    def of(cls, run: RunContext, data: dict, loaders: Loaders, steps: int) -> Probes:
        from reslab.probes.callback import GradNormProbe
        from reslab.probes.curves import CurveProbe
        from reslab.probes.flow_callback import FlowProbe
        from reslab.run.checkpoint import Checkpointer
        from reslab.training.recorder import RunRecorder

        cfg, work, per_epoch = run.cfg, run.work, len(loaders.train)
        tx, ty, ex, ey, norm = (data[k] for k in ("tx", "ty", "ex", "ey", "norm"))
        dev, channels_last = loaders.dev, loaders.channels_last
        grad_every = cfg.probes.grad_every_n_steps or max(1, per_epoch // max(1, cfg.probes.grad_points_per_epoch))
        grad = GradNormProbe(grad_every) if cfg.probes.grad_norms else None
        flow = (
            FlowProbe.for_run(cfg, steps, tx, ty, norm, dev, channels_last) if cfg.probes.get("flow_points") else None
        )
        curve = cfg.profile.get("curve") or {}
        curve_steps = schedule(steps, int(curve.get("points") or 0), int(curve.get("early_points") or 0))
        curves = None
        if curve.get("points"):
            curves = CurveProbe.for_run(
                cfg, work / "curves.csv", curve_steps, (tx, ty), (ex, ey), norm, dev, channels_last, loaders.eval_batch
            )
        recorder = RunRecorder(work / "metrics.csv", run.name, per_epoch, steps)
        # Last among the callbacks: the others have finished their step when their state is saved.
        every = int(cfg.trainer.get("checkpoint_every_n_steps", 200) or 0)
        checkpointer = Checkpointer(work / runinfo.CHECKPOINT, every, loaders.train, keep=ladder.keep_paths(cfg, work))
        return cls(grad, grad_every, flow, curves, curve_steps, recorder, None, checkpointer)

    def callbacks(self) -> list:
        return [c for c in (self.grad, self.flow, self.curves, self.recorder, self.series, self.checkpointer) if c]


def finish(
    run: RunContext, data: dict, loaders: Loaders, recipe: Recipe, module, probes: Probes, global_step: int, wall, size
) -> dict:
    """Rank 0, after training: the final evaluations, the probes' tables, Fig. 7's responses, the weights, and
    result.json (last: a run is finished when it has one)."""
    cfg, work, tx, ty, norm = run.cfg, run.work, data["tx"], data["ty"], data["norm"]
    dev, channels_last, eval_batch = loaders.dev, loaders.channels_last, loaders.eval_batch
    status = "diverged" if module.diverged else "ok"
    final_eval, eval_wall = ({}, 0.0)
    train_eval = {}
    if status == "ok":
        final_eval, eval_wall = outputs.final_evaluation(work, module.model, loaders.eval, run.precision)
        phases.mark("final evaluation")
        train_eval = outputs.final_train_evaluation(
            cfg, module.model, tx, ty, norm, dev, channels_last, eval_batch, run.precision
        )
        phases.mark("train evaluation")
    outputs.probe_tables(work, probes.grad, probes.flow)
    phases.mark("probe tables written")
    if status == "ok" and cfg.probes.responses:
        calib = norm.to(dev)(tx[: int(cfg.probes.get("response_calib_images", 2000))].to(dev))
        outputs.responses(work, module.model, loaders.eval, eval_batch, calib=calib)
        phases.mark("Fig. 7 responses")
    if cfg.trainer.save_weights:
        io.save_weights(work / "model.pt", module.model)
        phases.mark("weights written")
    images = (global_step - (probes.recorder.start_step or 0)) * cfg.profile.batch_size
    result = {
        **outputs.identity(cfg, run.key),
        **outputs.outcome(status, probes.recorder.rows, final_eval, global_step, wall, eval_wall, images),
        **outputs.recipe(
            cfg,
            data,
            recipe,
            steps_per_epoch=len(loaders.train),
            curve_steps=probes.curve_steps if probes.curves is not None else [],
            grad_every=probes.grad_every if probes.grad is not None else None,
            flow_steps=sorted(probes.flow.steps) if probes.flow is not None else [],
            eval_batch=eval_batch,
            **size,
        ),
        **outputs.provenance(cfg, run.device, run.precision, data["arrays"]),
        **train_eval,
    }
    if ladder.on(cfg):
        result["ladder"] = {
            "budgets": ladder.budgets(cfg),
            **(ladder.recorded(work) or {}),
            "kept_steps": sorted(ladder.kept(work)),
        }
    io.write_json(work / "result.json", result)
    phases.mark("result written")
    return result
