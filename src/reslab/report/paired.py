"""Paired comparisons of two variants trained on the same seeds, the shortcut study's decision rule.

Seeds pair: runs of one seed share the data order, the augmentation draws and the training subset, so
the per-seed difference removes what the variants share. Per contrast:
- `paired`: mean per-seed difference, its t-based confidence interval and two-sided p (paired t-test);
- `mcnemar`: exact McNemar test on the test images, discordant pairs summed over seeds (a stratified
  test of "these trained nets differ on the same images", not of the seed population);
- `decide`: the rule of experiments/shortcut.md on Holm-adjusted p-values and a practical threshold;
- `seeds_needed`: how many seeds a paired t-test needs to detect an effect with the wanted power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from reslab.report.trend import holm

ALPHA = 0.05         # two-sided, family-wise per family of contrasts (Holm)
PRACTICAL_PP = 2.0   # differences smaller than this are not called, in either direction
POWER = 0.8
CONFIDENCE = 0.95


@dataclass
class Paired:
    name: str
    metric: str
    worse: str            # the variant the hypothesis expects to be worse
    better: str
    diffs: np.ndarray     # per seed, worse - better, percentage points
    mean: float
    sd: float
    ci: tuple[float, float]
    p: float              # two-sided paired t-test
    p_adj: float = math.nan
    verdict: str = "inconclusive"
    family: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.diffs)


def paired(name: str, metric: str, worse: str, better: str, a: dict, b: dict,
           confidence: float = CONFIDENCE) -> Paired:
    """a, b: {seed: value}. Only seeds present in both count."""
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n > 1 and sd > 0:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        ci = (mean - half, mean + half)
        p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    elif n > 1:  # identical differences in every seed: no spread to test against
        ci, p = (mean, mean), (0.0 if mean != 0 else 1.0)
    else:
        ci, p = (math.nan, math.nan), math.nan
    return Paired(name, metric, worse, better, d, mean, sd, ci, p)


def decide(c: Paired, alpha: float = ALPHA, practical: float = PRACTICAL_PP) -> str:
    """supported: worse - better >= practical and the Holm-adjusted p < alpha; contradicted: the same in the
    other direction; no practical difference: the whole CI lies inside (-practical, +practical);
    else inconclusive (and the report computes the seeds that would decide it)."""
    if not np.isfinite(c.p_adj):
        return "inconclusive"
    if c.p_adj < alpha and c.mean >= practical:
        return "supported"
    if c.p_adj < alpha and c.mean <= -practical:
        return "contradicted"
    if np.isfinite(c.ci[0]) and -practical < c.ci[0] and c.ci[1] < practical:
        return "no practical difference"
    return "inconclusive"


def decide_family(contrasts: list[Paired], family: str, alpha: float = ALPHA,
                  practical: float = PRACTICAL_PP) -> list[Paired]:
    """Holm over the family's two-sided p-values, then the rule; contrasts without a p stay inconclusive."""
    ps = [c.p if np.isfinite(c.p) else 1.0 for c in contrasts]
    for c, q in zip(contrasts, holm(ps) if ps else []):
        c.family, c.p_adj = family, (q if np.isfinite(c.p) else math.nan)
        c.verdict = decide(c, alpha, practical)
    return contrasts


def power(effect: float, sd: float, n: int, alpha: float) -> float:
    """Power of a two-sided paired t-test at level alpha with n pairs, true mean difference `effect`."""
    if n < 2 or not (sd > 0):
        return math.nan
    df, nc = n - 1, abs(effect) / (sd / math.sqrt(n))
    t = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(t, df, nc) + stats.nct.cdf(-t, df, nc))


def seeds_needed(effect: float, sd: float, alpha: float, target: float = POWER, cap: int = 200) -> int | None:
    """Smallest n with power >= target; None when no n up to `cap` reaches it (or sd is unknown)."""
    if not (sd > 0) or not np.isfinite(sd) or effect == 0:
        return None
    for n in range(2, cap + 1):
        if power(effect, sd, n, alpha) >= target:
            return n
    return None


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """(b, c, p): images only a gets right, only b gets right, exact two-sided McNemar p."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = float(stats.binomtest(only_a, n, 0.5).pvalue) if n else 1.0
    return only_a, only_b, p
