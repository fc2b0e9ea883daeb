"""The budget study's statistics on tables whose answer is known: a gap that shrinks by a fixed amount per doubling
of the budget, per seed plus noise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reslab.report import budget_stats as bs

BUDGETS = [800, 1600, 3200, 6400]


def table(gap_at_800: float, per_doubling: float, seeds=(0, 1, 2), noise: float = 0.3, shallow: float = 30.0):
    """ResNet-20 at `shallow` - 2 pp per doubling; ResNet-56 at that plus the gap, which moves by `per_doubling`."""
    rng = np.random.default_rng(0)
    rows = []
    for s in seeds:
        for b in BUDGETS:
            k = math.log2(b / 800)
            r20 = shallow - 2 * k + rng.normal(0, noise)
            gap = gap_at_800 + per_doubling * k + rng.normal(0, noise)
            rows += [
                dict(family="resnet", depth=20, steps=b, seed=s, test_error=r20),
                dict(family="resnet", depth=56, steps=b, seed=s, test_error=r20 + gap),
            ]
    return pd.DataFrame(rows)


def test_the_gap_table_is_deep_minus_shallow_per_seed_and_budget():
    g = bs.gaps(table(4.0, -2.0, noise=0.0), "test_error", 56, 20)
    assert list(g.columns) == BUDGETS and list(g.index) == [0, 1, 2]
    assert g.to_numpy() == pytest.approx(np.tile([4.0, 2.0, 0.0, -2.0], (3, 1)))


def test_a_gap_that_closes_with_budget_is_a_falling_trend_and_crosses_where_the_line_says():
    df = table(4.0, -3.0)
    t = bs.gap_trend(df, "test_error", 56, 20)
    assert t.S < 0 and t.p < 0.01
    c = bs.contrasts(df, "test_error", 56, 20)
    assert [x.verdict for x in c][0] == "contradicted"  # at 800 steps the deep net is worse by ~4 pp
    cross = bs.crossover(df, "test_error", 56, 20, decided=c)
    assert cross.slope == pytest.approx(-3.0, abs=0.3)
    if cross.observed:  # 6400 steps: ~-5 pp on 3 seeds
        assert cross.steps == 6400 and c[-1].verdict == "supported"
    # the fitted line reaches -2 pp at 800 x 2^2 = 3200 steps
    free = bs.crossover(df, "test_error", 56, 20, decided=[])
    assert free.steps == pytest.approx(3200, rel=0.15) and not free.extrapolated
    assert free.low <= free.steps <= free.high


def test_a_crossover_beyond_the_ladder_is_an_extrapolation_and_none_if_the_gap_never_closes():
    slow = bs.crossover(table(6.0, -1.0), "test_error", 56, 20)
    assert slow.extrapolated and slow.steps > 6400 and not slow.observed
    assert math.log2(slow.steps / 800) == pytest.approx(8, abs=1)  # 8 doublings, up to the fitted slope's noise
    never = bs.crossover(table(4.0, +1.0), "test_error", 56, 20)
    assert never.steps is None and not never.observed


def test_compute_matched_interpolates_the_shallow_net_between_its_rungs_only():
    assert bs.interpolate({800: 30.0, 1600: 28.0}, 1131.37) == pytest.approx(29.0, abs=0.01)
    assert math.isnan(bs.interpolate({800: 30.0, 1600: 28.0}, 3200))
    df = table(4.0, -3.0, noise=0.0)
    m = bs.compute_matched(df, "test_error", 56, 20, ratio=2.0)
    # 56 at 800 vs 20 at 1600, 56 at 1600 vs 20 at 3200, 56 at 3200 vs 20 at 6400; 56 at 6400 has no match
    assert [c.extra["steps"] for c in m] == [800, 1600, 3200]
    # shallow(2B) - deep(B) = (-2) - gap(B) = -6, -3, 0 pp
    assert [c.mean for c in m] == pytest.approx([-6.0, -3.0, 0.0], abs=1e-9)
