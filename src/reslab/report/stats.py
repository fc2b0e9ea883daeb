"""Aggregation over seeds and the decision rules stated in experiments/*.md."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

PRACTICAL_PP = 1.0   # a depth effect smaller than 1 percentage point is not called either way
ALPHA = 0.05         # one-sided test on the fitted depth slope


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


@dataclass
class DepthTrend:
    family: str
    shallow: int
    deep: int
    delta: float          # mean(deep) - mean(shallow), percentage points
    delta_sd: float       # sqrt(sd_deep^2 + sd_shallow^2) when there are >= 2 seeds, else nan
    n_seeds: int
    slope_per_10: float   # fitted change per 10 layers, pp
    slope_se_per_10: float
    p_up: float           # one-sided p-value that error rises with depth
    p_down: float
    n_points: int
    verdict: str          # "rises" | "falls" | "inconclusive"

    def describe(self, metric: str = "training error") -> str:
        spread = f" ± {self.delta_sd:.2f}" if np.isfinite(self.delta_sd) else ""
        seeds = f"over {self.n_seeds} seed{'s' if self.n_seeds != 1 else ''}"
        direction = "higher" if self.delta > 0 else "lower"
        return (f"{self.family}-{self.deep} ends with {direction} {metric} than {self.family}-{self.shallow} by "
                f"{abs(self.delta):.2f}{spread} pp ({seeds}); fitted slope {self.slope_per_10:+.2f} ± "
                f"{self.slope_se_per_10:.2f} pp per 10 layers over {self.n_points} runs "
                f"(one-sided p = {min(self.p_up, self.p_down):.3g})")


def depth_trend(df: pd.DataFrame, family: str, column: str = "train_error") -> DepthTrend | None:
    """Decision rule (experiments/depth.md): error 'rises' with depth when the deepest net's mean is
    more than PRACTICAL_PP above the shallowest's AND the least-squares slope of error on depth over
    all (depth, seed) runs is positive at one-sided p < ALPHA; 'falls' symmetrically; else inconclusive.
    The slope test uses every depth, so it has an uncertainty even with a single seed."""
    d = df[(df.family == family) & df[column].notna()]
    d = d[np.isfinite(d[column].astype(float))]
    depths = sorted(d.depth.unique())
    if len(depths) < 2:
        return None
    shallow, deep = depths[0], depths[-1]
    m0, s0, n0 = mean_std(d[d.depth == shallow][column])
    m1, s1, n1 = mean_std(d[d.depth == deep][column])
    delta = m1 - m0
    delta_sd = math.sqrt(s0 ** 2 + s1 ** 2) if (n0 > 1 and n1 > 1) else math.nan
    x, y = d.depth.astype(float).to_numpy(), d[column].astype(float).to_numpy()
    if len(d) > 2 and len(set(x)) > 1:
        fit = stats.linregress(x, y)
        slope, se = fit.slope, fit.stderr
        dof = len(d) - 2
        t = slope / se if se > 0 else (math.inf if slope > 0 else -math.inf)
        p_up, p_down = float(stats.t.sf(t, dof)), float(stats.t.cdf(t, dof))
    else:
        slope, se, p_up, p_down = (y[-1] - y[0]) / (x[-1] - x[0]), math.nan, math.nan, math.nan
    if delta > PRACTICAL_PP and p_up < ALPHA:
        verdict = "rises"
    elif delta < -PRACTICAL_PP and p_down < ALPHA:
        verdict = "falls"
    else:
        verdict = "inconclusive"
    return DepthTrend(family, int(shallow), int(deep), delta, delta_sd, min(n0, n1), 10 * slope, 10 * se,
                      p_up, p_down, len(d), verdict)


def compare(a, b) -> tuple[float, float, int, int]:
    """(mean(a) - mean(b), sd of that difference or nan, n_a, n_b)."""
    ma, sa, na = mean_std(a)
    mb, sb, nb = mean_std(b)
    sd = math.sqrt(sa ** 2 / na + sb ** 2 / nb) if na > 1 and nb > 1 else math.nan
    return ma - mb, sd, na, nb
