"""Aggregation over seeds, shared by every report: mean and sd, their text, and the chance level."""

from __future__ import annotations

import math

import numpy as np

CHANCE = 90.0  # ten classes: the error of a guess; a diverged run with no finite metric counts as this


def mean_std(values) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v)


def pm(mean: float, std: float, n: int, digits: int = 2) -> str:
    if not np.isfinite(mean):
        return "n/a"
    if n > 1 and np.isfinite(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"
