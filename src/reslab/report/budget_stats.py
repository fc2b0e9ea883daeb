"""The budget study's statistics (experiments/budget.md; issue 24): how the gap between a deep and a shallow net moves
with the training budget. Pure functions of a runs table; the report (not written yet) applies them.

The runs table has one row per finished run: `family`, `depth`, `steps` (the budget B, in iterations), `seed`, and
the metric columns (`train_eval_error`, `test_error`). Seeds pair: a seed fixes the data order and augmentation of
every net and budget, so per seed the gap g_s(B) = error(deep) - error(shallow) removes what the two share.

- `gaps`: the (seeds x budgets) table of g.
- `contrasts`: per budget, the paired contrast shallow - deep ("deeper is better at B" is *supported* when the deep
  net is better by >= the practical threshold), decided as one Holm family over the budgets (reslab.report.paired).
- `gap_trend`: the seasonal Kendall test of g over the budgets, seeds as blocks (reslab.report.trend).
- `crossover`: the smallest budget whose contrast is supported; else, from per-seed least-squares lines of g on
  log2 B, the budget where the mean line reaches -practical, with the budgets where its 95% band does: an
  extrapolation when beyond the largest rung, and labelled so.
- `compute_matched`: the deep net at B against the shallow net at the budget of the same training FLOPs
  (B x flops ratio), the shallow net's error interpolated per seed on log2 B between its rungs (never extrapolated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from reslab.report import paired


def gaps(df: pd.DataFrame, metric: str, deep: int, shallow: int, family: str = "resnet") -> pd.DataFrame:
    """seeds x budgets: error(deep) - error(shallow), only where both ran."""
    sub = df[df.family == family]
    table = sub.pivot_table(index=["seed", "steps"], columns="depth", values=metric)
    if deep not in table or shallow not in table:
        return pd.DataFrame()
    g = (table[deep] - table[shallow]).dropna()
    return g.unstack("steps").sort_index(axis=1)


def contrasts(
    df: pd.DataFrame,
    metric: str,
    deep: int,
    shallow: int,
    family: str = "resnet",
    practical: float = paired.PRACTICAL_PP,
) -> list[paired.Paired]:
    """One paired contrast per budget, shallow - deep (positive: the deep net is better), decided as one family."""
    g = gaps(df, metric, deep, shallow, family)
    out = []
    for steps in g.columns:
        col = g[steps].dropna()
        diffs = {int(s): float(v) for s, v in col.items()}
        c = paired.paired(
            f"{family}-{deep} vs {family}-{shallow} at {steps} steps",
            metric,
            f"{family}-{shallow}",
            f"{family}-{deep}",
            {s: -v for s, v in diffs.items()},
            {s: 0.0 for s in diffs},
        )
        c.extra["steps"] = int(steps)
        out.append(c)
    if out:
        paired.decide_family(out, f"{family} {deep} vs {shallow} by budget", practical=practical)
    return out


def gap_trend(df: pd.DataFrame, metric: str, deep: int, shallow: int, family: str = "resnet"):
    from reslab.report import trend

    g = gaps(df, metric, deep, shallow, family).dropna()
    if g.shape[0] < 1 or g.shape[1] < 2:
        return None
    return trend.trend(f"gap {family}-{deep} - {family}-{shallow} over budget", list(g.columns), g.to_numpy())


@dataclass
class Crossover:
    steps: float | None  # the crossover budget (a rung, or the fitted line's point), None: not reached
    low: float | None  # the 95% band's earliest budget (None: not reached within the horizon)
    high: float | None  # its latest (None: not within the horizon)
    observed: bool  # a rung reached it (a verdict), not the fitted line
    extrapolated: bool  # beyond the largest rung
    slope: float  # mean per-seed slope of g per doubling of the budget, pp
    horizon: float  # the largest budget searched


def crossover(
    df: pd.DataFrame,
    metric: str,
    deep: int,
    shallow: int,
    family: str = "resnet",
    practical: float = paired.PRACTICAL_PP,
    doublings: int = 10,
    decided: list[paired.Paired] | None = None,
) -> Crossover | None:
    g = gaps(df, metric, deep, shallow, family).dropna()
    if g.shape[0] < 2 or g.shape[1] < 2:
        return None
    budgets = np.array(g.columns, dtype=float)
    x = np.log2(budgets)
    fits = np.array([np.polyfit(x, row, 1) for row in g.to_numpy()])  # per seed: slope, intercept
    n = len(fits)
    grid = np.linspace(x.min(), x.max() + doublings, 1 + 64 * (int(x.max() - x.min()) + doublings))
    pred = fits[:, :1] * grid + fits[:, 1:]  # seeds x grid
    mean, sd = pred.mean(0), pred.std(0, ddof=1)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)

    def first(curve) -> float | None:
        hit = np.nonzero(curve <= -practical)[0]
        return float(2 ** grid[hit[0]]) if len(hit) else None

    decided = decided if decided is not None else contrasts(df, metric, deep, shallow, family, practical)
    supported = [c.extra["steps"] for c in decided if c.verdict == "supported"]
    point = float(min(supported)) if supported else first(mean)
    return Crossover(
        steps=point,
        low=first(mean - half),
        high=first(mean + half),
        observed=bool(supported),
        extrapolated=not supported and point is not None and point > budgets.max(),
        slope=float(fits[:, 0].mean()),
        horizon=float(2 ** grid[-1]),
    )


def interpolate(errors: dict[int, float], steps: float) -> float:
    """An error at `steps` from a net's rungs, linear in log2 of the budget; NaN outside the rungs."""
    xs = sorted(errors)
    if not xs or steps < xs[0] or steps > xs[-1]:
        return math.nan
    return float(np.interp(math.log2(steps), np.log2(xs), [errors[b] for b in xs]))


def compute_matched(
    df: pd.DataFrame,
    metric: str,
    deep: int,
    shallow: int,
    ratio: float,
    family: str = "resnet",
    practical: float = paired.PRACTICAL_PP,
) -> list[paired.Paired]:
    """Per rung B of the deep net: shallow(B x ratio) - deep(B) per seed (positive: at equal cost the deep net is
    better), where B x ratio lies within the shallow net's rungs; decided as one family."""
    sub = df[df.family == family]
    out = []
    for steps in sorted(sub[sub.depth == deep].steps.unique()):
        matched = float(steps) * ratio
        a, b = {}, {}
        for seed, runs in sub.groupby("seed"):
            shallow_errs = {int(r.steps): float(getattr(r, metric)) for r in runs[runs.depth == shallow].itertuples()}
            deep_err = runs[(runs.depth == deep) & (runs.steps == steps)][metric]
            value = interpolate(shallow_errs, matched)
            if len(deep_err) and math.isfinite(value):
                a[int(seed)], b[int(seed)] = value, float(deep_err.iloc[0])
        if len(a) >= 2:
            c = paired.paired(
                f"{family}-{deep} at {steps} vs {family}-{shallow} at {matched:.0f} steps",
                metric,
                f"{family}-{shallow}",
                f"{family}-{deep}",
                a,
                b,
            )
            c.extra.update(steps=int(steps), matched_steps=matched)
            out.append(c)
    if out:
        paired.decide_family(out, f"compute-matched {family} {deep} vs {shallow}", practical=practical)
    return out
