"""reslab's own work per step: what its pipeline adds to any model's step, measured with a net too small to matter.

A trivial net (a 1x1 convolution and a linear classifier) trains in reslab's pipeline (reslab_fit: DeviceLoader,
Classifier, Trainer, Checkpointer) and alone on one fixed batch (model_only), repeats interleaved. Its own step is the
same in both, so the difference per step is the pipeline's own cost at that batch: the batch gathered, normalised,
padded, cropped and flipped on the device, Lightning's loop and hooks, the Classifier's device-side sums. A model that
steps in t alone can then reach at most t / (t + that cost) of its limit in reslab: the cap that reslab's code sets.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch
import torch.nn as nn
from omegaconf import DictConfig

from reslab.bench.data import as_tensors, images_needed, random_cifar
from reslab.bench.limit import model_only
from reslab.bench.pipeline import reslab_fit


def trivial_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(4 * 32 * 32, 10))


def floor_rows(
    cfg: DictConfig, batches: list[int], device: str, precision: str, scratch: Path, quick: bool
) -> dict | None:
    """{batch: {"reslab": [ms/step per repeat], "model": [...], "own_ms": median of the paired differences}}."""
    f = cfg.bench.get("floor")
    if not f:
        return None
    steps, repeats = (2, 1) if quick else (int(f.steps), int(cfg.bench.repeats))
    warmup, dev = int(cfg.bench.warmup_steps), torch.device(device)
    p = cfg.profile
    opt = {k: p[k] for k in ("lr", "momentum", "weight_decay", "nesterov")}
    cl = bool(cfg.trainer.channels_last)
    rows = {}
    for batch in sorted(set(batches)):
        images, labels = random_cifar(images_needed(batch, warmup, steps, int(cfg.bench.min_images)), seed=batch)
        tx, ty = as_tensors(images, labels)
        torch.manual_seed(int(cfg.seed))
        variants = {
            "reslab": reslab_fit(
                cfg, trivial_net(), tx, ty, batch, device, cl, precision, Path(scratch) / f"floor-{batch}"
            )[0],
            "model": model_only(trivial_net(), opt, batch, dev, cl, precision),
        }
        ms: dict[str, list[float]] = {k: [] for k in variants}
        for r in range(repeats):
            for name in list(variants) if r % 2 == 0 else list(variants)[::-1]:
                ms[name].append(1000 * variants[name](warmup, steps) / steps)
        own = statistics.median(a - b for a, b in zip(ms["reslab"], ms["model"]))
        rows[str(batch)] = {**ms, "own_ms": own}
        print(f"[bench floor b{batch}] reslab's own work {own:.2f} ms/step", flush=True)
    return {"steps": steps, "repeats": repeats, "batches": rows}
