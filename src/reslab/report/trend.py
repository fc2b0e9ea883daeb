"""Trend over depth, tested across seeds: the statistics of the depth study (experiments/depth.md).

Data are a (seeds x depths) table of one quantity: a family's training error, or the paired
plain-minus-residual gap (same seed = same initial weights and same batches in both families).

- **Test: the seasonal Kendall test** (Hirsch, Slack & Smith 1982), seeds as "seasons". Within each
  seed, S_s = sum over depth pairs i<j of sign(y_j - y_i); S = sum_s S_s. Under the null (no trend:
  within a seed every assignment of its values to depths is equally likely) the distribution of S is
  the convolution of the per-seed permutation distributions, computed exactly (all k! orders of each
  seed's own values, so ties are handled). Rank-based, so a series that saturates at chance (90%)
  is not asked to be a straight line. Two-sided p = P(|S_null| >= |S_obs|).
- **Effect size:** the per-seed contrast deepest minus shallowest, mean with a 95% t interval over
  seeds (df = seeds - 1); tau = S / (seeds * C(k, 2)) in [-1, 1].
- **Flat** (an equivalence claim): TOST of the per-seed contrast against +-PRACTICAL_PP
  (reslab.report.paired.equivalence_p, on the two-sided scale), its p Holm-adjusted over the primary
  tests like the trend tests' p (amendment of 2026-12-03; before, the unadjusted 95% CI inside the band).
- **Multiplicity:** Holm over the study's primary tests, for the trend p and the flat p alike.
- **Seeds needed** when a test is inconclusive: the smallest number of seeds at which the same
  decision rule reaches the target power, by simulation from a normal model with the observed
  per-depth sds and the means of a planned effect (`design_means`; experiments/depth.md, amendment of
  2026-12-03), not the observed means.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from reslab.report.paired import equivalence_p, holm
from reslab.report.stats import CHANCE

ALPHA = 0.05  # family-wise, two-sided, over the primary tests (Holm)
PRACTICAL_PP = 2.0  # a deepest-minus-shallowest contrast smaller than this is not called a trend
POWER = 0.8


def _pair_signs(y: np.ndarray) -> np.ndarray:
    """sum_{i<j} sign(y[..., j] - y[..., i]) over the last axis."""
    k = y.shape[-1]
    i, j = np.triu_indices(k, 1)
    return np.sign(y[..., j] - y[..., i]).sum(-1)


_PERMS: dict[int, np.ndarray] = {}


def _perms(k: int) -> np.ndarray:
    if k not in _PERMS:
        _PERMS[k] = np.array(list(itertools.permutations(range(k))))
    return _PERMS[k]


def _null_of_seed(row: np.ndarray) -> dict[int, float]:
    s = _pair_signs(row[_perms(len(row))]).astype(int)
    vals, counts = np.unique(s, return_counts=True)
    return dict(zip(vals.tolist(), (counts / counts.sum()).tolist()))


def _convolve(dists: list[dict[int, float]]) -> dict[int, float]:
    out = {0: 1.0}
    for d in dists:
        nxt: dict[int, float] = {}
        for a, pa in out.items():
            for b, pb in d.items():
                nxt[a + b] = nxt.get(a + b, 0.0) + pa * pb
        out = nxt
    return out


def _two_sided(null: dict[int, float], s_obs: float) -> float:
    return float(min(1.0, sum(p for s, p in null.items() if abs(s) >= abs(s_obs) - 1e-9)))


@dataclass
class Trend:
    """The trend of one series over depth, across seeds."""

    name: str
    depths: list[int]
    n_seeds: int
    S: float
    tau: float
    p: float  # two-sided, exact, unadjusted
    delta: float  # mean over seeds of y(deepest) - y(shallowest), pp
    delta_ci: tuple[float, float]
    delta_sd: float
    p_holm: float = math.nan
    p_flat: float = math.nan  # equivalence (TOST against +-practical) of the contrast, two-sided scale
    p_flat_holm: float = math.nan
    verdict: str = "inconclusive"  # "rises" | "falls" | "flat" | "inconclusive"
    seeds_needed: int | None = None  # computed when inconclusive; None = not computed, -1 = more than the cap
    seeds_flat: int | None = None  # seeds to call a truly flat series 'flat' (reslab.report.power); None = none
    extra: dict = field(default_factory=dict)

    def ci_text(self) -> str:
        lo, hi = self.delta_ci
        return f"{self.delta:+.2f} pp [95% CI {lo:+.2f}, {hi:+.2f}]"


def seasonal_kendall(y: np.ndarray) -> tuple[float, float, float]:
    """(S, tau, exact two-sided p) for a (seeds x depths) table, depths in increasing order."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or y.shape[1] < 2 or y.shape[0] < 1:
        raise ValueError(f"need a (seeds x depths) table with >= 2 depths, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("the table has missing values; fill them (e.g. diverged runs at chance) first")
    s_obs = float(_pair_signs(y).sum())
    k = y.shape[1]
    tau = s_obs / (y.shape[0] * k * (k - 1) / 2)
    null = _convolve([_null_of_seed(row) for row in y])
    return s_obs, tau, _two_sided(null, s_obs)


def contrast(y: np.ndarray) -> tuple[float, tuple[float, float], float]:
    """Mean over seeds of y[:, -1] - y[:, 0], its 95% t interval and the sd of the per-seed contrasts."""
    c = np.asarray(y, dtype=float)[:, -1] - np.asarray(y, dtype=float)[:, 0]
    m = float(c.mean())
    if len(c) < 2:
        return m, (math.nan, math.nan), math.nan
    sd = float(c.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(c) - 1)) * sd / math.sqrt(len(c))
    return m, (m - half, m + half), sd


def trend(name: str, depths, y: np.ndarray, practical: float = PRACTICAL_PP) -> Trend:

    y = np.asarray(y, dtype=float)
    S, tau, p = seasonal_kendall(y)
    delta, ci, sd = contrast(y)
    t = Trend(name, [int(d) for d in depths], y.shape[0], S, tau, p, delta, ci, sd)
    if y.shape[0] > 1:
        t.p_flat = float(equivalence_p(delta, sd, y.shape[0], practical))
    return t


def decide(t: Trend, alpha: float = ALPHA, practical: float = PRACTICAL_PP) -> str:
    """'rises' / 'falls': Holm-adjusted p < alpha, in that direction, and |contrast| >= practical.
    'flat': not a trend, and the Holm-adjusted equivalence p of the contrast (TOST against +-practical) < alpha:
    an equivalence claim at the same multiplicity as a trend (for one test: its 95% CI inside the band).
    Else 'inconclusive'."""
    if t.p_holm < alpha and t.S > 0 and t.delta >= practical:
        return "rises"
    if t.p_holm < alpha and t.S < 0 and t.delta <= -practical:
        return "falls"
    if t.p_flat_holm < alpha:
        return "flat"
    return "inconclusive"


def decide_all(trends: list[Trend], alpha: float = ALPHA, practical: float = PRACTICAL_PP) -> list[Trend]:
    """Holm over the trend tests' p, and separately over the flat tests' p (the same family), then `decide`."""

    for t in trends:  # the flat p depends on the band the family is decided at
        t.p_flat = float(equivalence_p(t.delta, t.delta_sd, t.n_seeds, practical)) if t.n_seeds > 1 else math.nan
    flat = holm([t.p_flat if np.isfinite(t.p_flat) else 1.0 for t in trends]) if trends else []
    for t, adj, adj_flat in zip(trends, holm([t.p for t in trends]), flat):
        t.p_holm = adj
        t.p_flat_holm = adj_flat if np.isfinite(t.p_flat) else math.nan
        t.verdict = decide(t, alpha, practical)
    return trends


# -- power ---------------------------------------------------------------------------------------
def _mahonian_null(k: int, n_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Null distribution of S over n_seeds seeds without ties: values and probabilities."""
    base = _null_of_seed(np.arange(k, dtype=float))
    dist = _convolve([base] * n_seeds)
    vals = np.array(sorted(dist))
    return vals, np.array([dist[v] for v in vals])


def power(
    means,
    sds,
    n_seeds: int,
    *,
    alpha: float = ALPHA,
    practical: float = PRACTICAL_PP,
    direction: int = 1,
    sims: int = 2000,
    seed: int = 0,
) -> float:
    """Probability that the decision rule calls a trend in `direction` (+1 rises, -1 falls) with
    n_seeds seeds, when y(depth, seed) ~ N(means[depth], sds[depth]^2) independently."""
    means, sds = np.asarray(means, float), np.maximum(np.asarray(sds, float), 1e-9)
    rng = np.random.default_rng(seed)
    y = rng.normal(means, sds, size=(sims, n_seeds, len(means)))
    S = _pair_signs(y).sum(-1)
    vals, probs = _mahonian_null(len(means), n_seeds)
    absv = np.abs(vals)
    # P(|S_null| >= |s|) for every simulated s, via the sorted |S| tail sums.
    order = np.argsort(absv)
    tail = np.cumsum(probs[order][::-1])[::-1]
    idx = np.searchsorted(absv[order], np.abs(S) - 1e-9, side="left")
    p = np.where(idx < len(tail), tail[np.minimum(idx, len(tail) - 1)], 0.0)
    delta = (y[:, :, -1] - y[:, :, 0]).mean(1)
    hit = (p < alpha) & (np.sign(S) == direction) & (direction * delta >= practical)
    return float(hit.mean())


def design_means(k: int, effect: float, direction: int = 1) -> np.ndarray:
    """The per-depth means of a planned trend for the power simulation: deepest minus shallowest = direction *
    effect, in even steps over the k depths (their order, not their size: the test is rank-based)."""
    return direction * effect * np.linspace(0.0, 1.0, k)


def seeds_needed(
    means,
    sds,
    *,
    alpha: float = ALPHA,
    practical: float = PRACTICAL_PP,
    target: float = POWER,
    direction: int | None = None,
    cap: int = 50,
    sims: int = 2000,
) -> int:
    """Smallest number of seeds at which `power` reaches `target`, or -1 if not within `cap`.
    The direction defaults to the sign of the observed deepest-minus-shallowest difference."""
    means = np.asarray(means, float)
    if direction is None:
        direction = 1 if means[-1] >= means[0] else -1
    if direction * (means[-1] - means[0]) < practical:
        return -1  # the observed effect is below the practical threshold: no number of seeds makes it one
    for n in range(2, cap + 1):
        if power(means, sds, n, alpha=alpha, practical=practical, direction=direction, sims=sims) >= target:
            return n
    return -1


def binomial_se(error_pct: float, n_images: int) -> float:
    p = min(max(error_pct / 100, 1e-6), 1 - 1e-6)
    return 100 * math.sqrt(p * (1 - p) / max(1, n_images))


def at_chance(mean_error_pct: float, n_images: int, chance: float = CHANCE) -> bool:
    """Within 2 binomial standard errors (of a classifier at chance, on n_images) of chance."""
    return abs(mean_error_pct - chance) <= 2 * binomial_se(chance, n_images)
