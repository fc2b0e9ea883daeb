"""The depth study's statistics on synthetic tables with known answers (seeds x depths)."""

from __future__ import annotations

import numpy as np
import pytest

from reslab.report import trend

DEPTHS = [20, 32, 44, 56, 110]


def table(means, sd, seeds, rng):
    return rng.normal(means, sd, size=(seeds, len(means)))


def test_exact_p_of_one_perfectly_ordered_seed_is_two_orders_out_of_120():
    S, tau, p = trend.seasonal_kendall(np.array([[1.0, 2, 3, 4, 5]]))
    assert (S, tau) == (10, 1.0)
    assert p == pytest.approx(2 / 120)


def test_ties_use_the_permutation_distribution_of_the_values_themselves():
    # All values equal: every order gives S = 0, so the p-value is exactly 1.
    S, _, p = trend.seasonal_kendall(np.full((3, 5), 90.0))
    assert S == 0 and p == pytest.approx(1.0)


def test_holm_matches_a_hand_computation():
    assert trend.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert trend.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_a_clear_interaction_is_found():
    rng = np.random.default_rng(0)
    plain = table([60, 70, 80, 88, 90], 1.0, 3, rng)
    resnet = table([55, 56, 55, 57, 56], 1.0, 3, rng)
    t = trend.trend("gap", DEPTHS, plain - resnet)
    trend.decide_all([t])
    assert t.verdict == "rises" and t.delta > 25 and t.delta_ci[0] > 20


def test_no_interaction_is_not_found_when_both_families_rise_alike():
    rng = np.random.default_rng(1)
    rise = np.array([60, 65, 70, 75, 80.0])
    plain, resnet = table(rise, 1.0, 3, rng), table(rise - 5, 1.0, 3, rng)
    t = trend.trend("gap", DEPTHS, plain - resnet)
    trend.decide_all([t])
    assert t.verdict in ("inconclusive", "flat")


def test_a_series_saturated_at_chance_is_still_a_rise_and_its_cells_are_flagged():
    rng = np.random.default_rng(2)
    plain = np.clip(table([62, 80, 89.9, 90.0, 90.0], 0.4, 3, rng), 0, 90.3)
    t = trend.trend("plain", DEPTHS, plain)
    trend.decide_all([t])
    assert t.verdict == "rises"
    means = plain.mean(0)
    flags = [trend.at_chance(m, 6400) for m in means]
    assert flags == [False, False, True, True, True]


def test_flat_needs_a_confidence_interval_inside_the_practical_band():
    rng = np.random.default_rng(3)
    t = trend.trend("resnet", DEPTHS, table([50, 50, 50, 50, 50.2], 0.3, 5, rng))
    trend.decide_all([t])
    assert t.verdict == "flat"
    wide = trend.trend("resnet", DEPTHS, table([50, 50, 50, 50, 50], 6.0, 3, rng))
    trend.decide_all([wide])
    assert wide.verdict == "inconclusive"


def test_seeds_needed_agrees_with_a_brute_force_simulation_of_the_decision_rule():
    means, sds = np.array([50.0, 50.8, 51.6, 52.4, 53.2]), np.full(5, 2.0)
    alpha = 0.05 / 3
    n = trend.seeds_needed(means, sds, alpha=alpha)
    assert 3 <= n <= 50

    def brute_power(seeds, sims=300, seed=123):
        rng = np.random.default_rng(seed)
        hits = 0
        for _ in range(sims):
            t = trend.trend("x", DEPTHS, rng.normal(means, sds, size=(seeds, 5)))
            t.p_holm = t.p  # one test, judged at the strict alpha
            hits += trend.decide(t, alpha=alpha) == "rises"
        return hits / sims

    # Monte Carlo error of 300 simulations is about 0.023; allow three of those.
    assert brute_power(n) >= trend.POWER - 0.07
    assert brute_power(n - 1) <= trend.POWER + 0.07


def test_seeds_needed_refuses_an_effect_below_the_practical_threshold():
    assert trend.seeds_needed([50, 50.5, 50.5, 50.6, 50.9], [0.5] * 5) == -1


def test_flat_is_holm_adjusted_over_the_three_tests_like_a_trend():
    """Amendment of 2026-12-03: 'flat' (an equivalence claim) at the same multiplicity as 'rises'/'falls'."""
    y = np.array(
        [
            [50.0, 50.3, 50.1, 50.6, 50.9],
            [50.2, 50.0, 50.4, 50.1, 49.6],
            [49.9, 50.5, 50.2, 50.0, 51.1],
            [50.1, 50.2, 49.8, 50.3, 49.9],
        ]
    )
    alone = trend.decide_all([trend.trend("resnet", DEPTHS, y)])[0]
    lo, hi = alone.delta_ci
    assert -2 < lo and hi < 2 and alone.verdict == "flat", "on its own: the 95% CI inside the band"
    rng = np.random.default_rng(11)
    noisy = [trend.trend(n, DEPTHS, table([50, 51, 52, 53, 54], 8.0, 4, rng)) for n in ("plain", "gap")]
    family = trend.decide_all([trend.trend("resnet", DEPTHS, y), *noisy])
    assert family[0].p_flat_holm == pytest.approx(3 * family[0].p_flat) and family[0].p_flat_holm > 0.05
    assert family[0].verdict == "inconclusive", "the old rule read the unadjusted CI and called it flat"


def test_the_depth_report_sizes_seeds_at_the_plans_effects_not_the_observed_means():
    from reslab.report import depth, power

    assert list(trend.design_means(5, 4.0, -1)) == [0.0, -1.0, -2.0, -3.0, -4.0]
    t = trend.trend("resnet", DEPTHS, table([50, 50.5, 51, 51.5, 52], 3.0, 3, np.random.default_rng(2)))
    trend.decide_all([t])
    t.verdict, t.seeds_needed, t.seeds_flat = "inconclusive", 7, None
    line = depth.verdict_lines(None, [("H2", "resnet", t)], 800)[0]
    assert "**7** to call a true 4 pp fall" in line and "not at the observed means" in line
    assert power.unreachable(0.0, "no practical difference") in line
    assert "flat test (TOST of the contrast against ±2 pp) Holm-adjusted p" in line


def test_below_the_papers_budget_h2_is_not_testable_and_the_rules_reading_stays_on_the_record(tmp_path):
    """Amendment of 2026-12-04 (experiments/depth.md): at the cpu budget deeper residual nets can be behind because
    the budget stops them early, so H2 reads 'not testable at this budget', keeps the pre-registered reading beside it,
    and points to the budget study; at the paper profile the rule's reading is the answer, as before."""
    from reslab.report import depth

    rng = np.random.default_rng(3)
    t = trend.trend("resnet", DEPTHS, table([50, 53, 56, 59, 62], 0.5, 3, rng))  # deeper residual nets worse
    trend.decide_all([t])
    assert depth.answer_of("H2", t) == "contradicted (deeper residual nets are worse)"
    pointer = depth.budget_pointer(tmp_path)
    assert "experiments/budget.md" in pointer and "not run yet" in pointer
    cpu = depth.verdict_lines(None, [("H2", "resnet", t)], 800, "cpu", pointer)[0]
    assert cpu.startswith("- **H2: not testable at this budget**")
    assert "the rule of 2026-11-25 reads: *contradicted (deeper residual nets are worse)*" in cpu
    assert "answered by the budget study" in cpu
    paper = depth.verdict_lines(None, [("H2", "resnet", t)], 64000, "paper", pointer)[0]
    assert paper.startswith("- **H2: contradicted (deeper residual nets are worse).**") and "budget study" not in paper
    (tmp_path / "budget").mkdir()
    (tmp_path / "budget" / "README.md").write_text("# budget")
    assert depth.budget_pointer(tmp_path) == "the budget study, [reports/budget](../budget/README.md)"
