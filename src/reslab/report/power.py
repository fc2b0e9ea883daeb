"""Power of the paired decision rule as applied, and the seeds it needs (issue 23; experiments/shortcut.md and
block.md, amendments of 2026-12-03).

The rule (reslab.report.paired.rule_codes) calls a difference only if the Holm-adjusted paired t-test p is below
alpha AND the mean difference is at least the 2 pp practical threshold, and 'no practical difference' only if the
Holm-adjusted equivalence (TOST) p is below alpha. The t-test's power alone ignores the threshold: when the true
effect equals the threshold, the observed mean falls below it half the time whatever the number of seeds, so the
rule's power never exceeds 0.5 there, while the t-test's climbs to 1. So this module simulates the whole rule.

- **Model:** per-seed differences ~ Normal(effect, sd), independent over seeds. The rule reads only their mean and
  sd, so each simulated study draws those from their exact distributions (mean ~ N(effect, sd^2/n), (n-1)s^2/sd^2 ~
  chi2(n-1)): the same verdicts as drawing n differences, at a cost independent of n. A p-value below a level is
  read as the t statistic beyond the matching critical value (the same event, without computing the p). The
  verdict itself is paired.rule_codes, the function paired.decide applies. tests/test_power.py checks the whole
  simulation against a loop that draws per-seed differences and calls the real paired.decide_family.
- **Multiplicity:** the contrast is judged at its family's strictest Holm level, alpha / m (its adjusted p is
  m * p, as when every other contrast of the family has a larger p). Holm never tests a contrast more strictly
  than that (p < alpha/m implies a Holm-adjusted p < alpha), so the power is a lower bound, whatever the other
  contrasts do, and the seeds a safe upper bound; exact for a family of one.
- **Effects:** stated in the plans, not observed: a true difference of DESIGN_EFFECT_PP for 'supported' (or minus
  it for 'contradicted') and a true difference of EQUIVALENCE_EFFECT_PP for 'no practical difference'. Plugging in
  an observed effect invites the winner's curse: the decided-looking effects are the ones that came out large (the
  block study's A2 shrank from 8.94 to 6.24 pp on fresh seeds). The sd is the observed one (a nuisance parameter).
- **Reproducible:** a fixed seed per (SEED, n), the same draws for every effect; results are cached.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

from reslab.report import paired

DESIGN_EFFECT_PP = 4.0  # true difference the seeds are sized to call ('supported'): twice the threshold
EQUIVALENCE_EFFECT_PP = 0.0  # true difference the seeds are sized to call 'no practical difference'
TARGET = paired.POWER  # 0.8
CAP = 200  # the most seeds searched
SIMS = 20_000  # simulated studies per seed count: Monte Carlo sd of a power near 0.8 is 0.003
SEED = 20261203


def intended(effect: float, practical: float = paired.PRACTICAL_PP) -> str:
    """The verdict a true `effect` should get: a difference when it is at least the threshold, else 'no practical
    difference'."""
    if effect >= practical:
        return "supported"
    if effect <= -practical:
        return "contradicted"
    return "no practical difference"


@lru_cache(maxsize=4096)
def _rates(
    effect: float, sd: float, n: int, m: int, alpha: float, practical: float, sims: int, seed: int
) -> tuple[float, ...]:
    rng = np.random.default_rng([seed, n])
    z, chi2 = rng.standard_normal(sims), rng.chisquare(n - 1, sims)
    mean = effect + sd * z / math.sqrt(n)
    se = sd * np.sqrt(chi2 / (n - 1)) / math.sqrt(n)
    # At the strictest Holm level the adjusted p is m * p, and m * p < alpha is a bound on the t statistic:
    # two-sided t-test: |t| > tc; TOST (2 * the larger one-sided p): both one-sided t's > tc.
    tc = special.stdtrit(n - 1, 1 - alpha / (2 * m))
    significant = np.abs(mean) > tc * se
    equivalent = (practical - np.abs(mean)) > tc * se
    codes = paired.rule_codes(mean, significant, equivalent, practical)
    return tuple((np.bincount(codes, minlength=len(paired.VERDICTS)) / sims).tolist())


def verdict_rates(
    effect: float,
    sd: float,
    n: int,
    m: int = 1,
    alpha: float = paired.ALPHA,
    practical: float = paired.PRACTICAL_PP,
    sims: int = SIMS,
    seed: int = SEED,
) -> dict[str, float]:
    """P(each verdict of the rule) with n seeds, true mean difference `effect`, sd of the per-seed differences
    `sd`, in a family of m contrasts (judged at alpha / m)."""
    if n < 2 or not (np.isfinite(sd) and sd > 0):
        raise ValueError(f"need n >= 2 seeds and a positive sd, got n = {n}, sd = {sd}")
    r = _rates(float(effect), float(sd), int(n), int(m), float(alpha), float(practical), int(sims), int(seed))
    return dict(zip(paired.VERDICTS, r))


def rule_power(
    effect: float,
    sd: float,
    n: int,
    m: int = 1,
    verdict: str | None = None,
    alpha: float = paired.ALPHA,
    practical: float = paired.PRACTICAL_PP,
    sims: int = SIMS,
    seed: int = SEED,
) -> float:
    """P(the rule returns `verdict`), by default the intended one for `effect` (see `intended`)."""
    return verdict_rates(effect, sd, n, m, alpha, practical, sims, seed)[verdict or intended(effect, practical)]


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def ceiling(effect: float, sd: float, n: int, verdict: str, practical: float = paired.PRACTICAL_PP) -> float:
    """An upper bound on the rule's power that needs no simulation: the probability that the observed mean lies
    where the verdict needs it (>= +practical, <= -practical, or inside the band)."""
    se = sd / math.sqrt(n)
    if verdict == "supported":
        return _phi((effect - practical) / se)
    if verdict == "contradicted":
        return _phi((-practical - effect) / se)
    return _phi((practical - effect) / se) - _phi((-practical - effect) / se)


def seeds_needed(
    effect: float,
    sd: float,
    m: int = 1,
    verdict: str | None = None,
    target: float = TARGET,
    alpha: float = paired.ALPHA,
    practical: float = paired.PRACTICAL_PP,
    cap: int = CAP,
    sims: int = SIMS,
    seed: int = SEED,
) -> int | None:
    """The number of seeds n (2..cap) at which the rule returns `verdict` (default: the intended one for `effect`)
    with probability >= target while n - 1 seeds do not; None when `cap` seeds do not (see `unreachable`), or the
    sd is unknown. Found by bisection (the power rises with n), about eight simulations per call."""
    if not (np.isfinite(sd) and sd > 0):
        return None
    verdict = verdict or intended(effect, practical)

    def ok(n: int) -> bool:
        return (
            ceiling(effect, sd, n, verdict, practical) >= target
            and rule_power(effect, sd, n, m, verdict, alpha, practical, sims, seed) >= target
        )

    if not ok(cap):
        return None
    lo, hi = 1, cap  # invariant: hi reaches the target, lo does not (one seed never decides anything)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def unreachable(
    effect: float, verdict: str | None = None, practical: float = paired.PRACTICAL_PP, cap: int = CAP
) -> str:
    """Why no number of seeds reaches the target, in words for a report."""
    verdict = verdict or intended(effect, practical)
    if verdict in ("supported", "contradicted") and abs(effect) <= practical:
        return (
            f"unreachable: at a true difference of {abs(effect):g} pp, not above the {practical:g} pp threshold, "
            "the observed mean reaches the threshold at most half the time, so the rule's power never exceeds "
            "0.5 at any number of seeds"
        )
    if verdict == "no practical difference" and abs(effect) >= practical:
        return (
            f"unreachable: at a true difference of {abs(effect):g} pp, not inside ±{practical:g} pp, the rule "
            "calls 'no practical difference' at most half the time at any number of seeds"
        )
    return f"more than {cap}"


def needed_text(n: int | None, effect: float, verdict: str | None = None, cap: int = CAP) -> str:
    """A seed count for a report: the number, or why there is none."""
    return str(n) if n else unreachable(effect, verdict, cap=cap)
