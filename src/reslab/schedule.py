"""The learning-rate schedule: warm-up, then step decay at fractions of training (He et al. 2016)."""

from __future__ import annotations

WARMUP_SHAPES = ("constant", "linear")


def lr_factor(step: int, total: int, milestones, gamma: float, warmup_steps: int, warmup_factor: float,
              warmup_shape: str = "constant") -> float:
    """Step-wise schedule: for the first `warmup_steps` either `warmup_factor` (constant, the paper's
    ResNet-110 warm-up) or a linear ramp from `warmup_factor` to 1 (gradual warm-up, Goyal et al. 2017,
    which avoids the loss spike of an abrupt lr jump); then base lr divided by 1/gamma at each milestone
    (fractions of `total`, so 0.5/0.75 of 64k = the paper's 32k/48k)."""
    if step < warmup_steps:
        if warmup_shape == "linear":
            return warmup_factor + (1 - warmup_factor) * step / warmup_steps
        return warmup_factor
    drops = sum(step >= round(m * total) for m in milestones)
    return gamma ** drops
