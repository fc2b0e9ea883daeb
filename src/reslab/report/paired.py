"""Paired comparisons of two variants trained on the same seeds, and the paired studies' decision rule.

Seeds pair: runs of one seed share the data order, the augmentation draws and the training subset, so
the per-seed difference removes what the variants share. Per contrast:
- `paired`: mean per-seed difference, its t-based 95% confidence interval, the two-sided paired t-test p, and
  the equivalence p of TOST against +-PRACTICAL_PP (`equivalence_p`);
- `decide` / `decide_family`: the rule of experiments/shortcut.md and block.md as amended on 2026-12-03 (the
  superiority p and the equivalence p each Holm-adjusted over the family; see `rule`);
- `mcnemar`: the exact McNemar test on the test images of one seed's two nets (it tests these trained nets,
  not the seed population: secondary, never in a verdict);
- `t_power` / `t_seeds_needed`: the paired t-test's power alone. It ignores the practical threshold and the
  equivalence part, so it is not the rule's power: reports size seeds with reslab.report.power, which
  simulates the whole rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

ALPHA = 0.05  # two-sided, family-wise per family of contrasts (Holm)
PRACTICAL_PP = 2.0  # differences smaller than this are not called, in either direction
POWER = 0.8
CONFIDENCE = 0.95


def holm(pvals: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    p = np.asarray(pvals, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj.tolist()


@dataclass
class Paired:
    name: str
    metric: str
    worse: str  # the variant the hypothesis expects to be worse
    better: str
    diffs: np.ndarray  # per seed, worse - better, percentage points
    mean: float
    sd: float
    ci: tuple[float, float]
    p: float  # two-sided paired t-test
    p_adj: float = math.nan
    p_equiv: float = math.nan  # equivalence (TOST against +-practical), on the two-sided scale: see equivalence_p
    p_equiv_adj: float = math.nan  # Holm-adjusted over the family's equivalence p-values
    verdict: str = "inconclusive"
    family: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.diffs)


def paired(name: str, metric: str, worse: str, better: str, a: dict, b: dict, confidence: float = CONFIDENCE) -> Paired:
    """a, b: {seed: value}. Only seeds present in both count."""
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return Paired(name, metric, worse, better, d, mean, sd, (math.nan, math.nan), math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)  # 0 if every seed has one difference
    return Paired(
        name,
        metric,
        worse,
        better,
        d,
        mean,
        sd,
        (mean - half, mean + half),
        float(t_p(mean, sd, n)),
        p_equiv=float(equivalence_p(mean, sd, n)),
    )


def _sf(t, df):
    """Upper tail of Student's t; t may be +-inf."""
    return special.stdtr(df, -np.asarray(t, dtype=float))


def t_p(mean, sd, n):
    """Two-sided paired t-test p of mean differences `mean` with sd `sd` over n pairs (arrays broadcast).
    sd = 0 (the same difference in every seed): 0 if the mean is not 0, else 1."""
    mean, sd = np.asarray(mean, float), np.asarray(sd, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(mean) / (sd / np.sqrt(n))
        p = 2 * _sf(t, np.asarray(n) - 1)
    return np.where(sd > 0, p, np.where(mean != 0, 0.0, 1.0))


def equivalence_p(mean, sd, n, practical: float | None = None):
    """TOST (two one-sided t-tests) of H0: |true mean| >= practical, on the two-sided scale: twice the larger of
    the one-sided p's against -practical and +practical, capped at 1. So equivalence_p < alpha exactly when the
    (1 - alpha) t-interval lies strictly inside (-practical, +practical): for alpha = 0.05 the 95% CI the rule of
    2026-11-25 used, which makes the superiority p and this p comparable against one alpha. Arrays broadcast;
    sd = 0: 0 if |mean| < practical, else 1."""
    practical = PRACTICAL_PP if practical is None else practical
    mean, sd = np.asarray(mean, float), np.asarray(sd, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = sd / np.sqrt(n)
        df = np.asarray(n) - 1
        p_low = _sf((mean + practical) / se, df)  # H0: mean <= -practical
        p_high = _sf((practical - mean) / se, df)  # H0: mean >= +practical
        p = np.minimum(1.0, 2 * np.maximum(p_low, p_high))
    return np.where(sd > 0, p, np.where(np.abs(mean) < practical, 0.0, 1.0))


VERDICTS = ("supported", "contradicted", "no practical difference", "inconclusive")


def rule_codes(mean, significant, equivalent, practical: float = PRACTICAL_PP) -> np.ndarray:
    """The decision rule on arrays, as indices into VERDICTS; `decide` and the power simulation of
    reslab.report.power both apply it, so the two cannot drift apart. `significant`: the Holm-adjusted t-test p
    is below alpha; `equivalent`: the Holm-adjusted equivalence p (TOST against +-practical) is below alpha.
    0 supported: significant and mean difference >= +practical;
    1 contradicted: significant and mean difference <= -practical;
    2 no practical difference: equivalent (its CI lies inside the band, so it cannot also be 0 or 1);
    3 inconclusive: anything else."""
    mean, sig, eq = np.broadcast_arrays(
        np.asarray(mean, float), np.asarray(significant, bool), np.asarray(equivalent, bool)
    )
    return np.select([sig & (mean >= practical), sig & (mean <= -practical), eq], [0, 1, 2], 3)


def decide(c: Paired, alpha: float = ALPHA, practical: float = PRACTICAL_PP) -> str:
    """The rule (rule_codes) on one contrast whose p_adj and p_equiv_adj are set (by decide_family).
    Symmetric since 2026-12-03: both 'a difference' and 'no practical difference' are Holm-adjusted over the
    family; before, 'no practical difference' read the unadjusted 95% CI."""
    if not np.isfinite(c.p_adj):
        return "inconclusive"
    return VERDICTS[int(rule_codes(c.mean, c.p_adj < alpha, c.p_equiv_adj < alpha, practical))]


def decide_family(
    contrasts: list[Paired], family: str, alpha: float = ALPHA, practical: float = PRACTICAL_PP
) -> list[Paired]:
    """Holm over the family's two-sided t-test p-values, and separately Holm over its equivalence p-values (the
    same family size for both claims), then the rule; contrasts without a p stay inconclusive."""
    for c in contrasts:  # the equivalence p depends on the threshold the family is decided at
        c.p_equiv = float(equivalence_p(c.mean, c.sd, c.n, practical)) if c.n > 1 else math.nan
    ps = [c.p if np.isfinite(c.p) else 1.0 for c in contrasts]
    qs = [c.p_equiv if np.isfinite(c.p_equiv) else 1.0 for c in contrasts]
    for c, p_adj, q_adj in zip(contrasts, holm(ps) if ps else [], holm(qs) if qs else []):
        c.family = family
        c.p_adj = p_adj if np.isfinite(c.p) else math.nan
        c.p_equiv_adj = q_adj if np.isfinite(c.p_equiv) else math.nan
        c.verdict = decide(c, alpha, practical)
    return contrasts


def t_power(effect: float, sd: float, n: int, alpha: float) -> float:
    """Power of a two-sided paired t-test alone at level alpha with n pairs, true mean difference `effect`.
    Not the rule's power (no practical threshold): see reslab.report.power."""
    if n < 2 or not (sd > 0):
        return math.nan
    df, nc = n - 1, abs(effect) / (sd / math.sqrt(n))
    t = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(t, df, nc) + stats.nct.cdf(-t, df, nc))


def t_seeds_needed(effect: float, sd: float, alpha: float, target: float = POWER, cap: int = 200) -> int | None:
    """Smallest n at which the t-test alone reaches `target` power; None when no n up to `cap` does (or sd is
    unknown). Kept to show what the reports printed before 2026-12-03; reports use reslab.report.power."""
    if not (sd > 0) or not np.isfinite(sd) or effect == 0:
        return None
    for n in range(2, cap + 1):
        if t_power(effect, sd, n, alpha) >= target:
            return n
    return None


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """(b, c, p): images only a gets right, only b gets right, exact two-sided McNemar p. Meant for the two nets
    of one seed on one test set: images pooled over seeds are not independent draws of the seed population."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    p = float(stats.binomtest(only_a, n, 0.5).pvalue) if n else 1.0
    return only_a, only_b, p
