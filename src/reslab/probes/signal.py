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

The ratio is not scale-free: after BN, dL/dh scales as 1/|h|, so a net whose activations grow toward
the output shows a large ratio even where no block amplifies a relative change (issue 25). The
scale-free statistic is Philipp, Song & Carbonell's gradient scale coefficient (arXiv:1712.05577,
"The exploding gradient problem demystified", Definition 1): GSC(k, l) = ||J||_qm |h_k| / |h_l|, the
relative change of a later representation h_l per relative change of an earlier one h_k in a random
direction, where J = dh_l/dh_k and ||J||_qm is the quadratic-mean norm (root mean square of |J u| over
unit vectors u). It is estimated here from the same probe rows, per segment between consecutive probe
points (`gsc_per_block`), and read from its per-block geometric rate (`summarise_gsc`, `gsc_reading`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BAND = 10.0  # a factor of 10 between input and output side, either way
READINGS = ("vanishing", "exploding", "neither")


# The band on the per-block geometric rate of the GSC (`summarise_gsc`): the old whole-net band (a factor of
# BAND between the two ends) spread over the 9 blocks of the shallowest net of the depth study (ResNet-20 and
# plain-20: stem + 3 stages x 3 blocks), so that a net of any depth is read by the rate that the old band allowed
# at depth 20. A draft until a dated amendment of experiments/depth.md fixes it (issue 25): the committed report's
# readings are still those of the ratio (reslab.report.flow.READING_STATISTIC).
GSC_RATE_BAND = BAND ** (1 / 9)


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
    statistics, as in training), with the loss on those batches (`loss`, their mean; the same on every row). The
    weights are not changed; their .grad is cleared afterwards."""
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
    n, loss_sum = 0, 0.0
    try:
        for x, y in batches:
            grads.clear()
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            loss_sum += float(loss.detach())
            sums += np.array(
                [float(grads[i].float().pow(2).mean().sqrt()) if i in grads else math.nan for i in range(len(points))]
            )
            sizes = [grads[i][0].numel() if i in grads else 0 for i in range(len(points))]
            fwd_sums += np.array([acts.get(i, math.nan) for i in range(len(points))])
            n += 1
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        model.train(was)
    k = len(points)
    return [
        {
            "block": i,
            "name": name,
            "rel_depth": i / (k - 1) if k > 1 else 0.0,
            "grad_rms": sums[i] / max(n, 1),
            # per-example size of h_l: lets a reader convert the RMS to a per-example norm (RMS * sqrt(size))
            "elements": sizes[i],
            # the forward signal at the same point (RMS of h_l): how the activations grow through the net
            "act_rms": fwd_sums[i] / max(n, 1),
            # the loss on the probe's batches at this point (the net as it is, train-mode BN): what the net has
            # learnt, on the same batches and at the same step as the gradients
            "loss": loss_sum / max(n, 1),
        }
        for i, (name, _) in enumerate(points)
    ]


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


def gsc_per_block(grad_rms, act_rms, elements) -> np.ndarray:
    """The gradient scale coefficient of every segment between consecutive probe points, input side first
    (entry i: from point i to point i + 1, so a net with k points has k - 1 entries).

    GSC = ||J||_qm |h_in| / |h_out| (Philipp et al., Definition 1). With g = dL/dh and an output gradient
    of random orientation relative to J, |g_in|^2 = |J^T g_out|^2 ~ |g_out|^2 ||J||_F^2 / d_out, and
    ||J||_qm^2 = ||J||_F^2 / d_in, so ||J||_qm ~ (|g_in| / |g_out|) sqrt(d_out / d_in). In the probe's
    per-element RMS values (|g| = G sqrt(d), |h| = A sqrt(d)):

        GSC = (G_in A_in) / (G_out A_out) * sqrt(d_in / d_out)

    For the many blocks that keep the shape (d_in = d_out) this is the relative gradient ratio
    (|g_in| |h_in|) / (|g_out| |h_out|); the sqrt term matters only where a block changes the shape (the
    first block of a stage halves d), and makes a parameter-free zero-pad shortcut read exactly like an
    identity (relative changes pass through unchanged). Multiplying a block's output by a constant leaves
    it unchanged: that is what makes the statistic scale-free."""
    g, a, d = (np.asarray(v, dtype=float) for v in (grad_rms, act_rms, elements))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = g * a
        out = rel[:-1] / rel[1:] * np.sqrt(d[:-1] / d[1:])
    out[~np.isfinite(out) | (out <= 0)] = math.nan
    return out


def summarise_gsc(grad_rms, act_rms, elements) -> dict:
    """Whole-net GSC (input side over output side; the per-block estimates telescope, so it is their product)
    and its per-block geometric rate, whole ** (1 / blocks): the depth-free number that is read."""
    per = gsc_per_block(grad_rms, act_rms, elements)
    blocks = len(per)
    if not blocks or not np.isfinite(per).all():
        return {"gsc": math.nan, "gsc_rate": math.nan, "blocks": blocks}
    log = float(np.log(per).sum())
    return {"gsc": math.exp(log) if log < 700 else math.inf, "gsc_rate": math.exp(log / blocks), "blocks": blocks}


def gsc_reading(rate: float, band: float = GSC_RATE_BAND) -> str:
    """The reading of a per-block GSC rate: below 1/band vanishing, above band exploding."""
    return reading(rate, band)
