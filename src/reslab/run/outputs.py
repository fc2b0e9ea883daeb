"""What a run writes once its training has ended (rank 0 only, into the run's `.next` directory): the final
evaluation's per-image predictions, the probes' tables, the Fig. 7 responses, the weights, and the result record.
result.json is written last by train.fit: its presence is what marks a run finished."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from reslab import io
from reslab.run import distributed, numerics, runinfo
from reslab.training.evaluate import evaluate
from reslab.training.recipe import Recipe


def final_evaluation(work: Path, model: torch.nn.Module, eval_loader, precision: str) -> tuple[dict, float]:
    """(test loss and error, seconds) over the whole eval set; predictions.npz holds the per-image predictions in
    eval-set order, for paired per-image tests (McNemar) between runs."""
    t0 = time.perf_counter()
    out = evaluate(model, eval_loader, precision)
    seconds = time.perf_counter() - t0
    if "predictions" in out:
        pred, label = out.pop("predictions"), out.pop("labels")
        io.save_npz(work / "predictions.npz", pred=pred, label=label)
    return out, seconds


def train_evaluation(model: torch.nn.Module, loader, precision: str) -> dict:
    """The trained net's loss and error on a fixed sample of its training images, un-augmented and in eval mode:
    the training error of the net as it ends, comparable across budgets (an epoch's running error mixes the net's
    states over the epoch, and a budget that ends mid-epoch averages over part of one)."""
    out = evaluate(model, loader, precision)
    return {
        "train_eval_error": out["test_error"],
        "train_eval_loss": out["test_loss"],
        "train_eval_images": len(loader.y),
    }


def final_train_evaluation(
    cfg: DictConfig, model, tx, ty, norm, dev, channels_last: bool, eval_batch: int, precision: str
) -> dict:
    """profile.train_eval_images (absent or null: none): the trained net on a fixed, class-balanced sample of its
    training images (the same for every seed and budget), un-augmented (`train_evaluation`)."""
    n = cfg.profile.get("train_eval_images")
    if not n:
        return {}
    from reslab.data import DeviceLoader
    from reslab.data.arrays import stratified_subset

    idx = stratified_subset(ty, int(n), seed=0)
    loader = DeviceLoader(tx[idx].to(dev), ty[idx].to(dev), norm, eval_batch, train=False, channels_last=channels_last)
    return train_evaluation(model, loader, precision)


def csv(path: Path, rows) -> None:
    import pandas as pd

    io.save_with(path, lambda f: pd.DataFrame(rows).to_csv(f, index=False))


def probe_tables(work: Path, grad_probe, flow) -> None:
    """grad_norms.csv (weight-gradient norms by layer), signal.csv and updates.csv (the flow probe's)."""
    if grad_probe is not None and grad_probe.rows:
        csv(work / "grad_norms.csv", grad_probe.rows)
    if flow is not None:
        csv(work / "signal.csv", flow.signal_rows)
        csv(work / "updates.csv", flow.update_rows)


def responses(work: Path, model: torch.nn.Module, eval_loader, batch_size: int, calib: torch.Tensor) -> None:
    """Fig. 7: the std of every layer's response over every eval image, BN recalibrated on `calib` (un-augmented
    training images)."""
    from reslab.probes import layer_responses

    resp = layer_responses(model, torch.cat([xb for xb, _ in eval_loader]), batch_size=batch_size, calib=calib)
    csv(work / "responses.csv", resp)


def identity(cfg: DictConfig, key: str) -> dict:
    return {
        "key": key,
        "study": cfg.study,
        "label": runinfo.label(cfg),
        "family": runinfo.family(cfg),
        "depth": int(cfg.model.depth),
        "variant": OmegaConf.to_container(cfg.variant, resolve=True) if cfg.get("variant") else None,
        "seed": int(cfg.seed),
        "profile": cfg.profile.name,
        "numerics": numerics.VERSION,
    }


def outcome(
    status: str, rows: list[dict], final_eval: dict, steps_done: int, wall: float, eval_wall: float, images: int
) -> dict:
    """The run's numbers: the last finite epoch's training loss and error, the final evaluation's (else the last
    epoch's) test loss and error, and its times."""
    good = [r for r in rows if math.isfinite(r.get("train_loss", math.nan))]
    last = good[-1] if good else {}
    return {
        "status": status,
        "train_error": last.get("train_error"),
        "train_loss": last.get("train_loss"),
        "test_error": final_eval.get("test_error", last.get("test_error")),
        "test_loss": final_eval.get("test_loss", last.get("test_loss")),
        # by the last row's number: a run that started on a budget ladder (reslab.run.ladder) has no rows before its
        # start
        "epochs_done": int(rows[-1]["epoch"]) if rows else 0,
        "steps": steps_done,
        "last_good_epoch": last.get("epoch"),
        "wall_seconds": wall,
        "images_per_second": images / wall if wall else None,
        "eval_seconds": eval_wall,
    }


def recipe(
    cfg: DictConfig,
    data: dict,
    recipe: Recipe,
    *,
    steps_per_epoch: int,
    curve_steps: list,
    grad_every: int | None,
    flow_steps: list,
    eval_batch: int,
    params: int,
    flops: int,
) -> dict:
    """What the run was set to do: data split, the recipe it trained with (reslab.training.recipe: the same object the
    module trained with), probes, evaluation batch, the net's size."""
    p = cfg.profile
    curve = p.get("curve") or {}
    curves_on = bool(curve_steps)
    return {
        "eval_split": data["eval_split"],
        "eval_images": len(data["ex"]),
        "train_images": len(data["tx"]),
        "steps_planned": recipe.total_steps,
        "steps_per_epoch": steps_per_epoch,
        "images_dropped_per_epoch": len(data["tx"]) - steps_per_epoch * p.batch_size,
        "batch_size": int(p.batch_size),
        **recipe.record(),
        "curve_steps": curve_steps,
        "curve_train_images": int(curve.get("train_images") or 0) if curves_on else 0,
        "curve_test_images": int(curve.get("test_images") or 0) if curves_on else 0,
        "grad_probe_every_steps": grad_every,
        "flow_probe_steps": flow_steps,
        "probes": OmegaConf.to_container(cfg.probes, resolve=True),
        "threads": torch.get_num_threads(),
        "deterministic": bool(cfg.trainer.deterministic),
        "eval_batch_size": eval_batch,
        "params": params,
        "flops": flops,
    }


def provenance(cfg: DictConfig, device: str, precision: str, arrays) -> dict:
    """Where the numbers came from: device, precision, devices under DDP, the data copy, torch, the commit."""
    return {
        "device": runinfo.device_name(device),
        "cpu": runinfo.cpu_name(),
        "precision": precision,
        **distributed.describe(cfg),
        "data_source": arrays.meta["source"],
        "data_format": arrays.meta["format"],
        "data_checksum": arrays.meta["checksum"],
        "data_copy": arrays.meta["copy"],
        "torch": torch.__version__,
        "git_commit": runinfo.git_commit(),
    }
