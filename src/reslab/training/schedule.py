"""The learning-rate schedule: warm-up, then either step decay at fractions of training (He et al. 2016) or
warmup-stable-decay (WSD: constant lr, then a decay over the last fraction of training; Hu et al. 2024, Hägele et
al. 2024).

WSD is what makes a budget ladder cheap (reslab.run.ladder): until the decay starts, a run of budget B has the lr of a
run of any larger budget, step for step, so a run of B can start from the larger run's checkpoint at B's decay start
and end with the bytes it would have had alone."""

from __future__ import annotations

import math

WARMUP_SHAPES = ("constant", "linear")
DECAY_SHAPES = ("linear", "cosine", "sqrt")  # sqrt: 1 - sqrt(t), the WSD cooldown of Hägele et al. 2024


def lr_factor(
    step: int,
    total: int,
    milestones,
    gamma: float,
    warmup_steps: int,
    warmup_factor: float,
    warmup_shape: str = "constant",
    decay: dict | None = None,
) -> float:
    """Step-wise schedule: for the first `warmup_steps` either `warmup_factor` (constant, the paper's
    ResNet-110 warm-up) or a linear ramp from `warmup_factor` to 1 (gradual warm-up, Goyal et al. 2017,
    which avoids the loss spike of an abrupt lr jump); then base lr divided by 1/gamma at each milestone
    (fractions of `total`, so 0.5/0.75 of 64k = the paper's 32k/48k). With `decay` ({fraction, shape}: WSD) the
    milestones are not used: base lr until `decay_start`, then down towards 0 at `total`."""
    if step < warmup_steps:
        if warmup_shape == "linear":
            return warmup_factor + (1 - warmup_factor) * step / warmup_steps
        return warmup_factor
    if decay:
        return wsd_factor(step, total, float(decay["fraction"]), str(decay.get("shape", "linear")))
    drops = sum(step >= round(m * total) for m in milestones)
    return gamma**drops


def decay_start(total: int, fraction: float) -> int:
    """The first step of a WSD decay over the last `fraction` of `total` steps."""
    return total - int(round(fraction * total))


def wsd_factor(step: int, total: int, fraction: float, shape: str = "linear") -> float:
    """1 until decay_start; then t = (step - start) / (total - start) runs from 0 (factor 1, so the first decay step
    still has the stable lr) to just below 1 at the last step, and the factor falls as 1 - t, (1 + cos(pi t)) / 2 or
    1 - sqrt(t)."""
    start = decay_start(total, fraction)
    if step < start or total <= start:
        return 1.0
    t = min(1.0, (step - start) / (total - start))
    if shape == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    if shape == "sqrt":
        return 1 - math.sqrt(t)
    return 1 - t
