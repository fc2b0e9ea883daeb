"""Layer responses as in ResNet Fig. 7: the std of each 3x3 layer's output after BN, before the ReLU
and the addition. Models mark those points with `ResponseTap`, so this works for any block.

The paper's statistic is read per channel (a channel's std over all images and positions, so that
channel offsets do not inflate it) and summarised per layer by the mean and the median over channels.
BN uses statistics recalibrated on training images for the final weights (running averages left by
training can be stale, e.g. after a blow-up), on a copy of the model so the trained one is untouched.

Near-constant channels are masked (issue 25): a channel whose BN variance (the pre-BN spread on the calibration
images, once recalibrated) is at most MASK_VAR_EPS times BN's eps is divided by about sqrt(eps) rather than by its
spread, so its response std measures the ratio of two tiny spreads, not the layer's response, and can reach
thousands. Per layer, `std_masked` is the mean over the other channels and `masked` their count; `std` and
`std_median` stay over every channel. A tap that no BN feeds directly (e.g. a pre-activation block's conv) masks
nothing. `gamma_abs_median` is the median |gamma| of that BN (NaN without one): with recalibrated BN a channel's
response std is about |gamma|, so it says how far training has moved the scales from their initial 1.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from reslab.models.layers import ResponseTap

# A channel is masked when its BN variance is at most this many times BN's eps: eps is then at least half of the
# normaliser's square, var + eps, so BN divides by less than sqrt(2 eps) whatever the channel's spread.
MASK_VAR_EPS = 1.0

# BN is recalibrated in train mode, on batches of this size: each batch's own statistics are averaged, so the size
# is part of the recipe (unlike the measuring pass, in eval mode, whose batch changes nothing but float rounding).
CALIB_BATCH = 500


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches) -> nn.Module:
    """Reset every BN's running statistics and re-estimate them as a plain average over `batches`."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    for x in batches:
        model(x)
    model.eval()
    return model


def feeding_bn(model: nn.Module) -> dict[nn.Module, nn.modules.batchnorm._BatchNorm]:
    """tap -> the BN right before it in the same container (conv-BN-tap, as every block marks its responses)."""
    out = {}
    for parent in model.modules():
        kids = list(parent.children())
        for before, tap in zip(kids, kids[1:]):
            if isinstance(tap, ResponseTap) and isinstance(before, nn.modules.batchnorm._BatchNorm):
                out[tap] = before
    return out


def near_constant(bn: nn.modules.batchnorm._BatchNorm | None, channels: int) -> torch.Tensor:
    """Channels whose BN variance is at most MASK_VAR_EPS x eps (module docstring); none without running stats."""
    if bn is None or bn.running_var is None or bn.running_var.numel() != channels:
        return torch.zeros(channels, dtype=torch.bool)
    return bn.running_var.detach().double().cpu() <= MASK_VAR_EPS * bn.eps


@torch.no_grad()
def layer_responses(
    model: nn.Module, x: torch.Tensor, calib: torch.Tensor | None = None, batch_size: int = 500
) -> list[dict]:
    """Per tapped layer: mean and median over channels of the per-channel std over the images in `x` (read
    `batch_size` at a time), and the mean over the channels that are not near-constant (`std_masked`, `masked`:
    module docstring). With `calib` (normalised training images), BN is recalibrated on them first (on a copy),
    CALIB_BATCH at a time."""
    if calib is not None:
        model = recalibrate_bn(copy.deepcopy(model), calib.split(CALIB_BATCH))
    taps = [(n, m) for n, m in model.named_modules() if isinstance(m, ResponseTap)]
    bns = feeding_bn(model)
    stats: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(_m, _inp, out):
            # Per-batch sums over images and positions in float32 (cheap, no layout copy), accumulated
            # across batches in float64 on the device; read once at the end.
            o = out.detach().float()
            n = torch.full((o.shape[1],), float(o.numel() // o.shape[1]), dtype=torch.float64, device=o.device)
            acc = torch.stack([o.sum((0, 2, 3)).double(), o.square().sum((0, 2, 3)).double(), n])
            stats[name] = stats[name] + acc if name in stats else acc

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in taps]
    was_training = model.training
    model.eval()
    try:
        for chunk in x.split(batch_size):
            model(chunk)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    rows = []
    for i, (name, tap) in enumerate(taps):
        s, ss, n = stats[name].cpu()
        std = (ss / n - (s / n) ** 2).clamp_min(0).sqrt()
        bn = bns.get(tap)
        mask = near_constant(bn, len(std))
        kept = std[~mask]
        gamma = bn.weight.detach().abs().double().cpu() if bn is not None and bn.weight is not None else None
        rows.append(
            {
                "layer": i,
                "name": name,
                "std": float(std.mean()),
                "std_median": float(std.median()),
                "channels": int(len(std)),
                "images": int(len(x)),
                "bn": "recalibrated" if calib is not None else "running",
                "std_masked": float(kept.mean()) if len(kept) else float("nan"),
                "masked": int(mask.sum()),
                "gamma_abs_median": float(gamma.median()) if gamma is not None else float("nan"),
            }
        )
    return rows
