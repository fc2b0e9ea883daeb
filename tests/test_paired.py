"""The shortcut study's paired tests and multiplicity correction, on inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from reslab.report.paired import decide_family, mcnemar, paired, power, seeds_needed
from reslab.report.trend import holm


def test_paired_t_matches_scipy_and_its_interval_covers_the_mean():
    a = {0: 50.0, 1: 52.0, 2: 49.0, 3: 55.0}
    b = {0: 47.0, 1: 48.5, 2: 47.0, 3: 50.0}
    c = paired("x", "test_error", "a", "b", a, b)
    ref = stats.ttest_rel([a[s] for s in range(4)], [b[s] for s in range(4)])
    assert c.mean == pytest.approx(3.375) and c.p == pytest.approx(ref.pvalue)
    assert c.ci[0] < c.mean < c.ci[1]


def test_pairing_removes_the_seed_effect_that_an_unpaired_test_would_count_as_noise():
    seed_effect = {s: 10.0 * s for s in range(4)}
    a = {s: 40 + seed_effect[s] + 2.0 + 0.1 * (-1) ** s for s in range(4)}
    b = {s: 40 + seed_effect[s] for s in range(4)}
    c = paired("x", "test_error", "a", "b", a, b)
    unpaired = stats.ttest_ind(list(a.values()), list(b.values())).pvalue
    assert c.p < 1e-3 < unpaired


def test_only_seeds_present_in_both_variants_are_paired():
    c = paired("x", "m", "a", "b", {0: 1.0, 1: 2.0, 2: 3.0}, {1: 0.0, 2: 1.0, 5: 9.0})
    assert c.n == 2 and list(c.diffs) == [2.0, 2.0]


def test_holm_adjusts_the_smallest_p_by_the_family_size_and_keeps_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.0133] + [0.2] * 7)[0] == pytest.approx(0.1064)  # issue 10: no longer below 0.05


def test_a_family_is_decided_on_adjusted_p_and_the_practical_threshold():
    rng = np.random.default_rng(0)
    big = paired("big", "m", "a", "b", dict(enumerate(5 + rng.normal(0, 0.3, 5))), dict(enumerate(np.zeros(5))))
    reverse = paired("rev", "m", "a", "b", dict(enumerate(np.zeros(5))), dict(enumerate(5 + rng.normal(0, 0.3, 5))))
    tiny = paired("tiny", "m", "a", "b", dict(enumerate(0.1 + rng.normal(0, 0.05, 5))), dict(enumerate(np.zeros(5))))
    noisy = paired("noisy", "m", "a", "b", dict(enumerate(rng.normal(3, 8, 5))), dict(enumerate(np.zeros(5))))
    decide_family([big, reverse, tiny, noisy], "f")
    assert big.verdict == "supported" and reverse.verdict == "contradicted"
    assert tiny.verdict == "no practical difference", "significant but far below the practical threshold"
    assert noisy.verdict == "inconclusive" and noisy.p_adj >= noisy.p


def test_a_single_seed_is_never_decided():
    c = decide_family([paired("x", "m", "a", "b", {0: 90.0}, {0: 10.0})], "f")[0]
    assert c.verdict == "inconclusive" and math.isnan(c.p)


def test_power_grows_with_seeds_and_seeds_needed_reaches_the_target():
    assert power(2.0, 1.5, 3, 0.05) < power(2.0, 1.5, 10, 0.05)
    n = seeds_needed(2.0, 1.5, 0.05)
    assert power(2.0, 1.5, n, 0.05) >= 0.8 > power(2.0, 1.5, n - 1, 0.05)
    assert seeds_needed(2.0, 1.5, 0.005) > n, "a stricter (Holm) level needs more seeds"
    # Simulation check of the power formula.
    rng = np.random.default_rng(1)
    sims = rng.normal(2.0, 1.5, (4000, n))
    t = sims.mean(1) / (sims.std(1, ddof=1) / math.sqrt(n))
    assert abs((np.abs(t) > stats.t.ppf(0.975, n - 1)).mean() - power(2.0, 1.5, n, 0.05)) < 0.03


def test_mcnemar_counts_discordant_images_and_is_exact():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([0, 0, 0, 0, 0, 0, 0, 1, 0, 1], bool)
    only_a, only_b, p = mcnemar(a, b)
    assert (only_a, only_b) == (7, 1) and p == pytest.approx(stats.binomtest(7, 8, 0.5).pvalue)
    assert mcnemar(a, a)[2] == 1.0
