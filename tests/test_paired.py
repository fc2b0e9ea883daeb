"""The shortcut study's paired tests and multiplicity correction, on inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from reslab.report.paired import decide_family, mcnemar, paired, t_power, t_seeds_needed
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


def test_the_t_tests_power_grows_with_seeds_and_its_seed_count_reaches_the_target():
    """The paired t-test alone (no practical threshold): what the reports sized seeds with before 2026-12-03."""
    assert t_power(2.0, 1.5, 3, 0.05) < t_power(2.0, 1.5, 10, 0.05)
    n = t_seeds_needed(2.0, 1.5, 0.05)
    assert t_power(2.0, 1.5, n, 0.05) >= 0.8 > t_power(2.0, 1.5, n - 1, 0.05)
    assert t_seeds_needed(2.0, 1.5, 0.005) > n, "a stricter (Holm) level needs more seeds"
    # Simulation check of the power formula.
    rng = np.random.default_rng(1)
    sims = rng.normal(2.0, 1.5, (4000, n))
    t = sims.mean(1) / (sims.std(1, ddof=1) / math.sqrt(n))
    assert abs((np.abs(t) > stats.t.ppf(0.975, n - 1)).mean() - t_power(2.0, 1.5, n, 0.05)) < 0.03


def test_mcnemar_counts_discordant_images_and_is_exact():
    a = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    b = np.array([0, 0, 0, 0, 0, 0, 0, 1, 0, 1], bool)
    only_a, only_b, p = mcnemar(a, b)
    assert (only_a, only_b) == (7, 1) and p == pytest.approx(stats.binomtest(7, 8, 0.5).pvalue)
    assert mcnemar(a, a)[2] == 1.0


# The symmetric rule (experiments/shortcut.md and block.md, amendment of 2026-12-03).


def _contrast(name, diffs):
    return paired(name, "test_error", "a", "b", dict(enumerate(diffs)), {s: 0.0 for s in range(len(diffs))})


def test_the_equivalence_p_is_twice_the_larger_of_the_two_one_sided_tests_against_the_band():
    d = np.array([0.4, -0.3, 1.1, 0.2, 0.6])
    c = _contrast("x", d)
    below = stats.ttest_1samp(d, -2.0, alternative="greater").pvalue  # H0: mean <= -2
    above = stats.ttest_1samp(d, 2.0, alternative="less").pvalue  # H0: mean >= +2
    assert c.p_equiv == pytest.approx(min(1.0, 2 * max(below, above)))


def test_for_a_family_of_one_no_practical_difference_is_still_the_95_ci_inside_the_band():
    rng = np.random.default_rng(5)
    for _ in range(300):
        c = decide_family([_contrast("x", rng.normal(rng.uniform(-3, 3), rng.uniform(0.2, 3), 4))], "f")[0]
        inside = -2.0 < c.ci[0] and c.ci[1] < 2.0
        assert (c.verdict == "no practical difference") == inside, (c.mean, c.ci, c.p_equiv)


def test_no_practical_difference_is_holm_adjusted_over_the_family_like_a_difference():
    # CI inside +-2 pp on its own (equivalence p about 0.02), but not at the level of a family of three.
    close = [0.9, -0.4, 1.6, -0.9, 0.5]
    alone = decide_family([_contrast("close", close)], "f")[0]
    assert alone.verdict == "no practical difference" and alone.p_equiv < 0.05
    fam = decide_family(
        [
            _contrast("close", close),
            _contrast("other", [9.0, 1.0, -7.0, 4.0, -2.0]),
            _contrast("third", [6.0, -5.0, 8.0, -3.0, 1.0]),
        ],
        "f",
    )
    assert fam[0].p_equiv_adj == pytest.approx(3 * fam[0].p_equiv) and fam[0].p_equiv_adj > 0.05
    assert fam[0].verdict == "inconclusive", "the old rule (unadjusted 95% CI) called this 'no practical difference'"


def test_a_difference_still_needs_holm_and_the_2pp_threshold_and_both_directions_are_alike():
    up = decide_family([_contrast("up", [2.5, 2.6, 2.4, 2.55])], "f")[0]
    down = decide_family([_contrast("down", [-2.5, -2.6, -2.4, -2.55])], "f")[0]
    small = decide_family([_contrast("small", [1.5, 1.6, 1.4, 1.55])], "f")[0]
    assert (up.verdict, down.verdict, small.verdict) == ("supported", "contradicted", "no practical difference")
    assert up.p_adj == down.p_adj and up.p_equiv_adj == down.p_equiv_adj


def test_the_verdict_line_shows_both_holm_adjusted_tests_and_no_mcnemar_p():
    from reslab.report import skeleton

    c = decide_family([_contrast("x", [3.0, 5.0, 4.0])], "f")[0]
    c.extra["mcnemar"] = [{"seed": 0, "right_only_worse": 700, "right_only_better": 1200, "p_mcnemar": 1e-124}]
    line = skeleton.verdict_line(c, "claim")
    assert "Holm-adjusted p" in line and "equivalence (TOST ±2 pp) Holm-adjusted p" in line
    assert "McNemar" not in line and "1e-124" not in line


def test_mcnemar_is_one_exact_test_per_seed_in_a_secondary_table(tmp_path):
    import pandas as pd

    from reslab.report import skeleton

    rng = np.random.default_rng(0)
    label = rng.integers(0, 10, 200)
    rows = []
    for net, acc in (("worse", 0.6), ("better", 0.8)):
        for seed in (0, 1):
            d = tmp_path / f"{net}-{seed}"
            d.mkdir()
            pred = np.where(rng.random(200) < acc, label, (label + 1) % 10)
            np.savez(d / "predictions.npz", pred=pred, label=label)
            rows.append({"label": net, "seed": seed, "run_dir": str(d)})
    df = pd.DataFrame(rows)
    m = skeleton.mcnemar(df, "worse", "better")["mcnemar"]
    assert [r["seed"] for r in m] == [0, 1]
    for r in m:  # each seed's own two nets, not the images of both seeds pooled
        cw, cb = skeleton.correct(df, "worse")[r["seed"]], skeleton.correct(df, "better")[r["seed"]]
        assert (r["right_only_worse"], r["right_only_better"], r["p_mcnemar"]) == mcnemar(cw, cb)
    c = _contrast("x", [1.0, 2.0])
    c.extra.update({"mcnemar": m})
    table = skeleton.mcnemar_table([c])
    assert len(table) == 1 and "seed 0:" in table.iloc[0, 2] and "seed 1:" in table.iloc[0, 2]
    assert len(skeleton.mcnemar_frame([c])) == 2
    assert "mcnemar" not in skeleton.contrasts_frame([c]).columns
