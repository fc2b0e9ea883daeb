"""The backward signal by depth, in a size-free form, and what it says: vanishing, exploding or neither.

Weight-gradient norms are not comparable across layers: a 432-entry stem and a 36,864-entry last conv
differ in size, and with BN a weight's gradient scales with 1/|W|. The statistic here is the RMS of
dL/dh_l, the gradient of the loss with respect to the output h_l of each block (the stem counts as
block 0): one number per element, whatever the layer's shape, and exactly the quantity that the chain
rule multiplies by the block Jacobians on the way back to the input.

Per net it is summarised two ways, so that nets of different depth line up:
- `ratio`: RMS at the input side (the stem's output) over RMS at the output side (the last block's);
- `slope`: least-squares slope of log10 RMS against relative depth (block index / number of blocks),
  in decades over the whole net; negative = smaller toward the output, i.e. larger toward the input.

Reading (experiments/depth.md): with the band [1/BAND, BAND] on the ratio,
  vanishing  ratio < 1/BAND   the input side gets far less gradient than the output side;
  exploding  ratio > BAND     far more;
  neither    in between.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BAND = 10.0  # a factor of 10 between input and output side, either way
READINGS = ("vanishing", "exploding", "neither")


def block_outputs(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) whose outputs are the net's block outputs, input side first. Models laid out
    as stem + stages of blocks (pycls style) are found by structure; others may list their own
    modules in a `signal_points()` method."""
    if hasattr(model, "signal_points"):
        return list(model.signal_points())
    if hasattr(model, "stem") and hasattr(model, "stages"):
        points = [("stem", model.stem)]
        for s, stage in enumerate(model.stages):
            for b, block in enumerate(stage):
                points.append((f"stages.{s}.{b}", block))
        return points
    raise TypeError(f"{type(model).__name__} has no stem/stages and no signal_points(); cannot probe its blocks")


def backward_signal(model: nn.Module, batches, loss_fn=F.cross_entropy) -> list[dict]:
    """RMS of dL/dh for every block output, averaged over `batches` (train mode: BN on batch
    statistics, as in training). The weights are not changed; their .grad is cleared afterwards."""
    points = block_outputs(model)
    sums = np.zeros(len(points))
    fwd_sums = np.zeros(len(points))
    sizes = [0] * len(points)
    grads: dict[int, torch.Tensor] = {}

    acts: dict[int, float] = {}

    def keep(i):
        def fwd(_m, _inp, out):
            acts[i] = float(out.detach().float().pow(2).mean().sqrt())
            out.register_hook(lambda g: grads.__setitem__(i, g.detach()))
        return fwd

    handles = [m.register_forward_hook(keep(i)) for i, (_, m) in enumerate(points)]
    was = model.training
    model.train()
    n = 0
    try:
        for x, y in batches:
            grads.clear()
            model.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            sums += np.array([float(grads[i].float().pow(2).mean().sqrt()) if i in grads else math.nan
                              for i in range(len(points))])
            sizes = [grads[i][0].numel() if i in grads else 0 for i in range(len(points))]
            fwd_sums += np.array([acts.get(i, math.nan) for i in range(len(points))])
            n += 1
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was)
    k = len(points)
    return [{"block": i, "name": name, "rel_depth": i / (k - 1) if k > 1 else 0.0, "grad_rms": sums[i] / max(n, 1),
             # per-example size of h_l: lets a reader convert the RMS to a per-example norm (RMS * sqrt(size))
             "elements": sizes[i],
             # the forward signal at the same point (RMS of h_l): how the activations grow through the net
             "act_rms": fwd_sums[i] / max(n, 1)}
            for i, (name, _) in enumerate(points)]


def summarise(rms) -> dict:
    """ratio (input side / output side) and slope (decades of log10 RMS over the net's relative depth)."""
    rms = np.asarray(rms, dtype=float)
    ok = np.isfinite(rms) & (rms > 0)
    if ok.sum() < 2:
        return {"ratio": math.nan, "slope": math.nan}
    x = np.linspace(0, 1, len(rms))[ok]
    slope = float(np.polyfit(x, np.log10(rms[ok]), 1)[0])
    ratio = float(rms[0] / rms[-1]) if ok[0] and ok[-1] else math.nan
    return {"ratio": ratio, "slope": slope}


def reading(ratio: float, band: float = BAND) -> str:
    if not math.isfinite(ratio):
        return "n/a"
    if ratio < 1 / band:
        return "vanishing"
    if ratio > band:
        return "exploding"
    return "neither"
