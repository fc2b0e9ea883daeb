"""The seeds the reports print are the decision rule's, not the t-test's (issue 23; experiments/*.md, amendments of
2026-12-03).

Claims: reslab.report.power gives the probability that the WHOLE rule (Holm-adjusted t-test, the 2 pp threshold on
the mean, the Holm-adjusted equivalence test) returns each verdict, as a loop that draws per-seed differences and
calls the real paired.decide_family finds; judging a contrast at its family's strictest Holm level never
overstates the power; when the true effect equals the threshold the rule's power stays at or below one half at any
number of seeds, so the t-test's "22 seeds give 80%" was false; the numbers are reproducible."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from reslab.report import paired, power


def brute_rates(effect, sd, n, m=1, others=None, sims=1000, seed=7):
    """Verdict frequencies of the first contrast of a family of m, by simulation through paired.paired and
    paired.decide_family. The other m - 1 contrasts are single-seed fillers (no p: Holm ranks them last, the
    strictest level for the first), or, with `others`, contrasts of n seeds with those true effects and sd."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(paired.VERDICTS, 0)
    zero = {s: 0.0 for s in range(n)}
    for _ in range(sims):
        fam = [paired.paired("target", "m", "a", "b", dict(enumerate(rng.normal(effect, sd, n))), zero)]
        if others is None:
            fam += [paired.paired(f"filler {i}", "m", "a", "b", {0: 1.0}, {0: 0.0}) for i in range(m - 1)]
        else:
            fam += [
                paired.paired(f"other {i}", "m", "a", "b", dict(enumerate(rng.normal(e, sd, n))), zero)
                for i, e in enumerate(others)
            ]
        paired.decide_family(fam, "f")
        counts[fam[0].verdict] += 1
    return {k: v / sims for k, v in counts.items()}


@pytest.mark.parametrize(
    "effect, sd, n, m", [(4.0, 2.81, 6, 2), (0.0, 1.5, 8, 3), (2.0, 2.81, 22, 2), (-3.0, 2.0, 5, 1)]
)
def test_the_simulated_rule_gives_the_verdicts_the_real_decide_family_gives(effect, sd, n, m):
    fast, slow = power.verdict_rates(effect, sd, n, m), brute_rates(effect, sd, n, m)
    for v in paired.VERDICTS:
        # 1,000 brute-force studies: Monte Carlo sd at most 0.016; allow about three of those.
        assert fast[v] == pytest.approx(slow[v], abs=0.05), (v, fast, slow)


def test_the_strictest_holm_level_never_overstates_the_power_whatever_the_other_contrasts_do():
    # Two other contrasts with large true effects are rejected first, so Holm tests the target at a looser level.
    helper = power.rule_power(4.0, 3.0, 5, m=3)
    family = brute_rates(4.0, 3.0, 5, others=[6.0, 6.0], sims=600)["supported"]
    assert family >= helper - 0.05
    assert helper == pytest.approx(brute_rates(4.0, 3.0, 5, m=3, sims=600)["supported"], abs=0.06)


def test_known_numbers_of_issue_23_t_test_power_081_but_rule_power_050():
    """Shortcut report, primary family: pooled sd 2.81 pp, 22 seeds, Holm's strictest level 0.05/2 = 0.025."""
    assert paired.t_power(2.0, 2.81, 22, 0.025) == pytest.approx(0.81, abs=0.01)
    assert paired.t_seeds_needed(2.0, 2.81, 0.025) == 22, "what the report printed as '22 seeds give 80% power'"
    assert power.rule_power(2.0, 2.81, 22, m=2) == pytest.approx(0.50, abs=0.02)


def test_at_a_true_effect_equal_to_the_threshold_no_number_of_seeds_reaches_80_percent():
    for n in (22, 60, 200):
        assert power.rule_power(2.0, 2.81, n, m=2) <= 0.5 + 0.01
    assert power.seeds_needed(2.0, 2.81, m=2) is None
    assert "never exceeds 0.5" in power.needed_text(None, 2.0)
    assert power.seeds_needed(-2.0, 1.0, m=1) is None, "the same for 'contradicted'"
    assert power.seeds_needed(2.0, 0.5, m=1, verdict="no practical difference") is None


def test_the_seed_count_reaches_the_target_and_one_seed_fewer_does_not():
    for effect, sd, m in [(4.0, 2.81, 2), (0.0, 2.81, 2), (4.0, 1.43, 13), (-4.0, 2.4, 5)]:
        n = power.seeds_needed(effect, sd, m)
        assert n is not None and 2 <= n < power.CAP
        assert power.rule_power(effect, sd, n, m) >= 0.8 > power.rule_power(effect, sd, n - 1, m), (effect, sd, m)


def test_more_contrasts_or_more_spread_need_more_seeds_and_a_larger_effect_fewer():
    base = power.seeds_needed(4.0, 2.5, m=2)
    assert power.seeds_needed(4.0, 2.5, m=13) > base
    assert power.seeds_needed(4.0, 3.5, m=2) > base
    assert power.seeds_needed(6.0, 2.5, m=2) < base
    # Calling a zero difference 'no practical difference' needs more seeds than calling a 4 pp one a difference.
    assert power.seeds_needed(0.0, 2.5, m=2) > base


def test_the_intended_verdict_follows_the_effect():
    assert [power.intended(e) for e in (4.0, 2.0, 1.0, 0.0, -2.0)] == [
        "supported",
        "supported",
        "no practical difference",
        "no practical difference",
        "contradicted",
    ]


def test_the_numbers_are_reproducible_and_fast():
    before = power.seeds_needed(0.0, 2.97, m=13)
    power._rates.cache_clear()
    start = time.process_time()
    again = power.seeds_needed(0.0, 2.97, m=13)
    assert again == before
    assert time.process_time() - start < 2.0, "one call is a few simulations of 20,000 studies"


def test_an_unknown_spread_gives_no_seed_count():
    assert power.seeds_needed(4.0, math.nan) is None and power.seeds_needed(4.0, 0.0) is None
    with pytest.raises(ValueError):
        power.verdict_rates(4.0, 2.0, 1)


def _with_sd(name, mean, sd, n):
    z = np.random.default_rng(len(name)).standard_normal(n)
    z = (z - z.mean()) / z.std(ddof=1)
    return paired.paired(name, "test_error", "a", "b", dict(enumerate(mean + sd * z)), {s: 0.0 for s in range(n)})


def test_the_reports_print_the_rules_seeds_at_the_plans_effects_not_the_t_tests_at_the_observed_one():
    from reslab.report import skeleton

    fam = [_with_sd("H1", 8.6, 2.81, 3), _with_sd("H3", 1.0, 2.81, 3)]
    skeleton.decide({"primary": fam})
    open_ = [c for c in fam if c.verdict == "inconclusive"]
    assert open_, "3 seeds at this spread decide neither contrast"
    for c in open_:
        assert c.extra["seeds_effect"] == power.seeds_needed(4.0, c.sd, 2)
        assert c.extra["seeds_equivalence"] == power.seeds_needed(0.0, c.sd, 2)
        text = skeleton.undecided_text(c)
        assert f"{c.extra['seeds_effect']} to call a true 4 pp difference" in text
        assert f"{c.extra['seeds_equivalence']} to call a true 0 pp difference 'no practical difference'" in text
    line = skeleton.design_line({"primary": fam})
    assert "pooled sd of the per-seed differences 2.81 pp" in line
    assert (
        f"80% power with {power.seeds_needed(4.0, 2.81, 2)} seeds for a true 4 pp difference and "
        f"{power.seeds_needed(0.0, 2.81, 2)} seeds to call a true 0 pp difference"
    ) in line
    assert "no number of seeds suffices: the rule's power stays at or below 0.5" in line
    assert "22 seeds" not in line, "the t-test's count at the threshold (issue 23) is not printed as the rule's"
