"""reports/<study>/ from a budget study (experiments/budget.md; issue 24): how the error of a deep and a shallow
residual net moves with the training budget, from the rungs of budget ladders (reslab.run.ladder).

Compute (budget_stats), then the figure, then one function per section. The rungs of one net and seed differ in
`profile.max_steps` (and, in the pilot, the decay shape) on purpose: those settings may vary across the study's runs,
nothing else may (reslab.report.consistency). The step-decay control lives in its own profile's folder
(runs/<study>/<control>/), read beside the ladder when present. Zero-initialised nets on the top rung (arm 5,
`make sweep-budget-zero-init`) are a family of their own (`zero-init`), paired with the standard runs of their seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reslab import io
from reslab.report import budget_stats, markdown, paired, skeleton, templates, trend
from reslab.report.results import load_csvs, load_results, run_dirs
from reslab.report.stats import mean_std, pm

VARY = ("profile.max_steps", "profile.decay.shape")  # what the rungs of one study differ in, on purpose
METRICS = {"test_error": "test error", "train_error": "training error (eval mode, fixed training images)"}
TARGETS = (60.0, 50.0, 40.0, 30.0)  # training-error targets (%) for "budget to reach"
OPTIONS = {"control": None}  # reslab-report budget control=<profile of the step-decay control>
ZERO_INIT = "zero-init"  # the initialisation control's variant (experiments/budget.md, arm 5)


# Compute.


def run_rows(results: pd.DataFrame) -> pd.DataFrame:
    """One row per run (runs.csv). `train_error` is the eval-mode error on the fixed training images of the budget
    profile (train_eval_error), not the running error of a last epoch that a rung ending mid-epoch does not have."""
    rows = []
    for _, r in results.iterrows():
        lad = r.get("ladder") if isinstance(r.get("ladder"), dict) else {}
        start = int(((lad or {}).get("start") or {}).get("step") or 0)
        decay = r.get("lr_decay") if isinstance(r.get("lr_decay"), dict) else {}
        train = r.get("train_eval_error")
        # A zero-initialised net (arm 5: variant=zero-init on the top rung) is a family of its own, so that every
        # contrast of the standard nets leaves it out and its own contrasts find it by name.
        variant = r.get("variant") if isinstance(r.get("variant"), dict) else {}
        family = ZERO_INIT if variant.get("name") == ZERO_INIT else r.family
        rows.append(
            {
                "label": r.label,
                "family": family,
                "depth": int(r.depth),
                "net": f"{family}-{int(r.depth)}",
                "steps": int(r.steps_planned),
                "images": int(r.steps_planned) * int(r.batch_size),
                "decay_shape": (decay or {}).get("shape", "step"),
                "seed": int(r.seed),
                "status": r.status,
                "train_error": float(train) if train is not None and train == train else float(r.train_error),
                "test_error": float(r.test_error),
                "test_loss": float(r.test_loss),
                "started_at": start,
                "trained_steps": int(r.steps_planned) - start,
                "wall_seconds": round(float(r.wall_seconds), 1),
                "params": int(r.params),
                "flops": int(r.flops),
                "git_commit": r.git_commit,
                "numerics": r.numerics,
                "key": r.key,
            }
        )
    return pd.DataFrame(rows).sort_values(["family", "depth", "decay_shape", "steps", "seed"]).reset_index(drop=True)


def cells(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and seeds per net, decay shape and budget (results.csv)."""
    out = []
    for (net, shape, steps), g in runs.groupby(["net", "decay_shape", "steps"]):
        tr, tr_sd, n = mean_std(g.train_error)
        te, te_sd, _ = mean_std(g.test_error)
        out.append(
            {
                "net": net,
                "family": g.family.iloc[0],
                "depth": int(g.depth.iloc[0]),
                "decay_shape": shape,
                "steps": int(steps),
                "images": int(g.images.iloc[0]),
                "n_seeds": n,
                "train_error_mean": tr,
                "train_error_std": tr_sd,
                "test_error_mean": te,
                "test_error_std": te_sd,
            }
        )
    return pd.DataFrame(out)


def pair(runs: pd.DataFrame, family: str = "resnet") -> tuple[int, int] | None:
    """(deep, shallow): the family's deepest and shallowest depths."""
    depths = sorted(runs[runs.family == family].depth.unique())
    return (int(depths[-1]), int(depths[0])) if len(depths) >= 2 else None


def per_step_seconds(runs: pd.DataFrame) -> dict[str, float]:
    """Measured training seconds per step of each net: its runs' wall time over the steps they trained."""
    g = runs[runs.trained_steps > 0].groupby("net")
    return {net: float(d.wall_seconds.sum() / d.trained_steps.sum()) for net, d in g}


def ladder_saving(runs: pd.DataFrame) -> dict | None:
    """What the ladder spent (measured: the runs' own training wall time) against separate runs from step 0 (each
    rung's budget at its net's measured seconds per step)."""
    lad = runs[(runs.decay_shape != "step") & (runs.family != ZERO_INIT)]  # arm 5 is the top rung only: no ladder
    if lad.empty or not (lad.started_at > 0).any():
        return None
    rate = per_step_seconds(lad)
    spent = float(lad.wall_seconds.sum())
    alone = float(sum(rate[n] * s for n, s in zip(lad.net, lad.steps)))
    return {
        "runs": len(lad),
        "steps": int(lad.trained_steps.sum()),
        "steps_alone": int(lad.steps.sum()),
        "spent_s": spent,
        "alone_s": alone,
        "saving": 1 - spent / alone if alone else math.nan,
    }


def reach(runs: pd.DataFrame, net: str, target: float, shape: str = "linear") -> dict[int, float]:
    """{seed: the budget (steps) at which the net's training error reaches `target`}, interpolated on log2 of the
    budget between its rungs; inf when no rung reaches it."""
    out = {}
    d = runs[(runs.net == net) & (runs.decay_shape == shape)]
    for seed, g in d.groupby("seed"):
        g = g.sort_values("steps")
        xs, ys = np.log2(g.steps.to_numpy(float)), g.train_error.to_numpy(float)
        hit = np.nonzero(ys <= target)[0]
        if not len(hit):
            out[int(seed)] = math.inf
        elif hit[0] == 0:
            out[int(seed)] = float(g.steps.iloc[0])
        else:
            i = hit[0]
            frac = (ys[i - 1] - target) / (ys[i - 1] - ys[i])
            out[int(seed)] = float(2 ** (xs[i - 1] + frac * (xs[i] - xs[i - 1])))
    return out


# Figure.


def error_vs_budget(runs: pd.DataFrame, path: Path, crossover: float | None, title: str) -> Path:
    """Error against budget (log x), one line per net (mean over seeds, band min-max), the crossover marked."""
    from reslab.report import plots

    plt = plots.plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    d = runs[runs.decay_shape != "step"]
    colors = plots._colors(sorted(d.net.unique()))
    for ax, metric in zip(axes, ("train_error", "test_error")):
        for (net, shape), g in d.groupby(["net", "decay_shape"]):
            s = g.groupby("steps")[metric].agg(["mean", "min", "max"])
            style = "--" if net.startswith("plain") else "-"
            ax.plot(
                s.index,
                s["mean"],
                style,
                marker="o",
                color=colors[net],
                label=net + ("" if shape == "linear" else f" ({shape} decay)"),
                alpha=1 if shape == "linear" else 0.5,
            )
            ax.fill_between(s.index, s["min"], s["max"], color=colors[net], alpha=0.15)
        if crossover:
            ax.axvline(crossover, color="k", ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget (iterations)")
        ax.set_ylabel(METRICS[metric])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return plots._save(fig, path)


# Sections.


def contrast_table(cs: list[paired.Paired]) -> pd.DataFrame:
    """The shared contrast table with the budget each row is at."""
    table = skeleton.contrast_table(cs)
    table.insert(0, "budget (steps)", [f"{c.extra['steps']:,}" for c in cs])
    if any("matched_steps" in c.extra for c in cs):
        table.insert(1, "matched (steps)", [f"{c.extra['matched_steps']:,.0f}" for c in cs])
    return table


def cells_section(runs: pd.DataFrame, curves: pd.DataFrame) -> list[str]:
    """Every net, decay shape and budget: errors over seeds; and, from each net's runs from step 0 (the trunks),
    the loss of the first probe window (ln 10 = 2.30 is chance) and loss spikes (reslab.report.depth's rule)."""
    from reslab.report.depth import BLOWUP_LOSS, blow_up

    first, spikes = {}, {}
    for r in runs[runs.started_at == 0].itertuples():
        c = curves[(curves.label == r.label) & (curves.seed == r.seed)] if not curves.empty else curves
        blew, _, loss = blow_up(c)
        first.setdefault(r.net, []).append(loss)
        spikes.setdefault(r.net, []).append(blew)
    rows = []
    for _, c in cells(runs).iterrows():
        rows.append(
            {
                "net": c.net,
                "decay": c.decay_shape,
                "budget (steps)": f"{c.steps:,}",
                "images seen": f"{c.images:,}",
                "seeds": c.n_seeds,
                "train err % (eval mode)": pm(c.train_error_mean, c.train_error_std, c.n_seeds),
                "test err %": pm(c.test_error_mean, c.test_error_std, c.n_seeds),
                "first-window loss (trunks)": f"{np.nanmean(first[c.net]):.2f}"
                if c.net in first and not np.isnan(first[c.net]).all()
                else "-",
                "runs with a loss spike (trunks)": f"{sum(spikes[c.net])} of {len(spikes[c.net])}"
                if c.net in spikes
                else "-",
            }
        )
    return [
        f"± is the sd over seeds. A loss spike: a probe window's running training loss above {BLOWUP_LOSS:g} after "
        "the first window (experiments/depth.md's rule).",
        "",
        markdown.table(pd.DataFrame(rows)),
    ]


def gap_section(runs: pd.DataFrame, deep: int, shallow: int) -> tuple[list[str], dict]:
    """Per budget, ResNet-deep against ResNet-shallow (one Holm family per metric), the trend, the crossover."""
    out, found = [], {}
    for metric, words in METRICS.items():
        lad = runs[runs.decay_shape == "linear"]
        cs = budget_stats.contrasts(lad, metric, deep, shallow)
        found[metric] = cs
        if not cs:
            out.append(f"- {words}: fewer than two seeds with both nets at a budget: no contrast.")
            continue
        out.append(f"**{words.capitalize()}** (shallow − deep per seed: positive = ResNet-{deep} better):")
        out.append("")
        out.append(markdown.table(contrast_table(cs)))
        out.append("")
        t = budget_stats.gap_trend(lad, metric, deep, shallow)
        found[f"{metric}_trend"] = t  # the headline reads it from here
        if t is not None:
            trend.decide_all([t])  # each metric's trend test is a family of its own
            meaning = {
                "falls": "the gap shrinks as the budget grows (the deep net catches up)",
                "rises": "the gap grows as the budget grows",
                "flat": "the gap does not move with budget",
                "inconclusive": "no trend decided",
            }[t.verdict]
            out.append(
                f"- Trend of g = error(ResNet-{deep}) − error(ResNet-{shallow}) over the budgets (seasonal "
                f"Kendall, seeds as blocks): tau {t.tau:+.2f}, p {skeleton.p_text(t.p)}, largest − smallest "
                f"budget {t.delta:+.2f} pp → **{t.verdict}**: {meaning}."
            )
        x = budget_stats.crossover(lad, metric, deep, shallow, decided=cs)
        found[f"{metric}_crossover"] = x
        out.append("- " + crossover_text(x, deep, shallow))
        out.append("")
    return out, found


NEXT_RUNG = 12_800  # the plan's next rung: its trunk continues from the 6,400-step trunk's kept checkpoint


def headline_section(found: dict, runs: pd.DataFrame, deep: int, shallow: int) -> list[str]:
    """The plan's headline (experiments/budget.md, "The headline"), computed from B1-B3 on test error, the primary
    metric: the budget from which ResNet-deep is better if a rung decides it; else where the gap stands per budget,
    its trend, the extrapolated crossover, and what would decide it. Always a budget reading."""
    cs, x = found.get("test_error") or [], found.get("test_error_crossover")
    if not cs:
        return ["_Not answerable yet: no budget has both nets on two or more seeds._"]
    top = int(max(c.extra["steps"] for c in cs))
    top_images = int(runs[runs.steps == top].images.iloc[0])
    batch = top_images // top
    share = 100 * top_images / markdown.PAPER_IMAGES
    words = {
        "supported": f"ResNet-{deep} better",
        "contradicted": f"ResNet-{shallow} better",
        "no practical difference": "no practical difference (within ±2 pp)",
        "inconclusive": "inconclusive",
    }
    per_budget = "; ".join(
        f"{c.extra['steps']:,}: {words[c.verdict]} ({c.mean:+.2f} pp, 95% CI [{c.ci[0]:+.2f}, {c.ci[1]:+.2f}])"
        for c in cs
    )
    t = found.get("test_error_trend")  # decided once, in gap_section
    trend_text = (
        f"the gap g = error(ResNet-{deep}) − error(ResNet-{shallow}) **{t.verdict}** with budget "
        f"(seasonal Kendall tau {t.tau:+.2f}, p {skeleton.p_text(t.p)}"
        + ("; the deeper net catches up)" if t.verdict == "falls" else ")")
        if t is not None
        else "the trend of the gap is not computable"
    )
    reading = (
        f"Budget reading: the largest rung, {top:,} iterations x batch {batch} = {top_images:,} images, is "
        f"{share:.2g}% of the paper's 64k x 128; these are CPU-sized budgets, not the paper's."
    )
    if x is not None and x.observed:
        answer = (
            f"**Yes, from {x.steps:,.0f} iterations on:** at that budget and above, ResNet-{deep} has a lower test "
            f"error than ResNet-{shallow} by at least {paired.PRACTICAL_PP:g} pp (the rule, Holm over the budgets); "
            f"{trend_text}."
        )
    else:
        if x is not None and x.steps is not None:
            where = (
                f"the per-seed fitted lines of g reach −{paired.PRACTICAL_PP:g} pp at about **{x.steps:,.0f} "
                f"iterations**" + (" (an extrapolation beyond the largest rung)" if x.extrapolated else "")
            )
        else:
            where = "the fitted lines of g do not reach the threshold within ten doublings"
        behind_at = [f"{c.extra['steps']:,}" for c in cs if c.verdict == "contradicted"]
        behind = (
            f"ResNet-{deep} is behind at {', '.join(behind_at)} iterations"
            if behind_at
            else f"ResNet-{deep} is behind at no rung"
        )
        answer = (
            f"**Not yet at {top:,} iterations:** no rung shows ResNet-{deep} better than ResNet-{shallow} by the "
            f"rule; {behind}, {trend_text}, and {where}. What would decide it: the next rung, {NEXT_RUNG:,} "
            "iterations (its trunk continues from the 6,400-step trunk's kept checkpoint), at the seeds the design "
            "line below gives."
        )
    return [
        f"- {answer}",
        f"- Test error, ResNet-{shallow} − ResNet-{deep} per budget (positive: the deeper net better): {per_budget}.",
        f"- {reading}",
    ]


def crossover_text(x, deep: int, shallow: int) -> str:
    if x is None:
        return "Crossover: not computable (fewer than two seeds or two budgets)."
    band = (
        f"95% band of the fitted line {x.low:,.0f}–{x.high:,.0f} steps"
        if x.low and x.high
        else f"95% band of the fitted line reaches it from {x.low:,.0f} steps"
        if x.low
        else "the 95% band of the fitted line does not reach it within the horizon"
    )
    if x.observed:
        return (
            f"Crossover (ResNet-{deep} better by ≥ {paired.PRACTICAL_PP:g} pp, decided): **{x.steps:,.0f} "
            f"steps** ({band})."
        )
    if x.steps is None:
        return (
            f"Crossover: **not reached** by any rung, and the per-seed lines of g on log2 B (slope "
            f"{x.slope:+.2f} pp per doubling) do not reach −{paired.PRACTICAL_PP:g} pp by {x.horizon:,.0f} steps."
        )
    return (
        f"Crossover: no rung decides it; the per-seed lines of g on log2 B (slope {x.slope:+.2f} pp per doubling) "
        f"reach −{paired.PRACTICAL_PP:g} pp at **{x.steps:,.0f} steps**"
        f"{' — an extrapolation beyond the largest rung' if x.extrapolated else ''} ({band})."
    )


def matched_section(runs: pd.DataFrame, deep: int, shallow: int) -> list[str]:
    lad = runs[runs.decay_shape == "linear"]
    fl = lad.groupby("depth").flops.first()
    rate = per_step_seconds(lad)
    ratios = {"training FLOPs": float(fl[deep] / fl[shallow])}
    if f"resnet-{deep}" in rate and f"resnet-{shallow}" in rate:
        ratios["measured wall time"] = rate[f"resnet-{deep}"] / rate[f"resnet-{shallow}"]
    out = []
    for what, ratio in ratios.items():
        cs = budget_stats.compute_matched(lad, "test_error", deep, shallow, ratio)
        out.append(
            f"- At equal {what} (ResNet-{deep} at B against ResNet-{shallow} at {ratio:.2f} x B, its error "
            "interpolated on log2 B between its rungs, never extrapolated):"
        )
        if not cs:
            out.append(f"  no rung of ResNet-{deep} has a matched budget within ResNet-{shallow}'s rungs.")
            continue
        out += ["", markdown.table(contrast_table(cs)), ""]
    return out


def plain_section(runs: pd.DataFrame) -> list[str]:
    """Degradation per budget: plain-deep − plain-shallow, and whether it changes between the plain rungs."""
    p = pair(runs, "plain")
    if p is None:
        return ["The plain arm has not run (or has one depth): no degradation reading."]
    deep, shallow = p
    lad = runs[runs.decay_shape == "linear"]
    cs = budget_stats.contrasts(lad, "train_error", deep, shallow, family="plain")
    out = [
        f"Degradation (training error, plain-{shallow} − plain-{deep} per seed: negative = the deeper plain net "
        "trains worse):",
        "",
        markdown.table(contrast_table(cs)) if cs else "no contrast",
        "",
    ]
    g = budget_stats.gaps(lad, "train_error", deep, shallow, family="plain")
    if g.shape[1] >= 2:
        lo, hi = g.columns.min(), g.columns.max()
        change = paired.paired(
            f"degradation gap at {hi} vs {lo} steps",
            "train_error",
            f"gap at {lo}",
            f"gap at {hi}",
            g[lo].dropna().to_dict(),
            g[hi].dropna().to_dict(),
        )
        paired.decide_family([change], "plain gap change")
        word = {"supported": "shrinks", "contradicted": "grows", "no practical difference": "persists unchanged"}
        out.append(
            f"- Change of the gap plain-{deep} − plain-{shallow} from {lo:,} to {hi:,} steps: "
            f"{-change.mean:+.2f} pp, 95% CI [{-change.ci[1]:+.2f}, {-change.ci[0]:+.2f}] → **"
            f"{word.get(change.verdict, 'inconclusive')}**."
        )
    return out


def control_section(runs: pd.DataFrame, control: pd.DataFrame | None, deep: int, shallow: int) -> list[str]:
    if control is None or control.empty:
        return ["The step-decay control has not run."]
    steps = int(control.steps.iloc[0])
    wsd = runs[(runs.decay_shape == "linear") & (runs.steps == steps)]
    out = []
    for metric, words in METRICS.items():
        gs = budget_stats.gaps(control, metric, deep, shallow)
        gw = budget_stats.gaps(wsd, metric, deep, shallow)
        if gs.empty or gw.empty:
            out.append(f"- {words}: no seed with both schedules.")
            continue
        a, b = gs[steps].dropna().to_dict(), gw[steps].dropna().to_dict()
        # The control runs a subset of the ladder's seeds: both means, the contrast and the ordering on those seeds.
        common = sorted(set(a) & set(b))
        a, b = {s: a[s] for s in common}, {s: b[s] for s in common}
        if len(common) < 2:
            out.append(f"- {words}: fewer than two seeds with both schedules.")
            continue
        c = paired.paired(f"gap under step decay vs WSD at {steps}", metric, "step", "wsd", a, b)
        paired.decide_family([c], "control")
        same = np.sign(np.mean(list(a.values()))) == np.sign(np.mean(list(b.values())))
        out.append(
            f"- {words} at {steps:,} steps: gap ResNet-{deep} − ResNet-{shallow} {np.mean(list(a.values())):+.2f} "
            f"pp under step decay, {np.mean(list(b.values())):+.2f} pp under WSD (the same {len(common)} seeds); "
            "their difference "
            f"{c.mean:+.2f} pp, 95% CI {skeleton.ci_text(c)} → {c.verdict}; the ordering is "
            f"**{'the same' if same else 'reversed'}**."
        )
    return out


def zero_init_section(runs: pd.DataFrame, deep: int, shallow: int) -> list[str]:
    """Arm 5: zero-initialised residual branches on the top rung, paired with the standard runs of the same seeds:
    standard - zero-init per depth (one Holm family), and the gap ResNet-deep - ResNet-shallow under zero-init."""
    z = runs[(runs.family == ZERO_INIT) & (runs.decay_shape == "linear")]
    if z.empty:
        return ["The zero-init arm has not run."]
    out = []
    for steps in sorted(z.steps.unique()):
        at = runs[(runs.steps == steps) & (runs.decay_shape == "linear")]
        cs = []
        for depth in (deep, shallow):
            a = skeleton.values(at.assign(label=at.net), f"resnet-{depth}", "test_error")
            b = skeleton.values(at.assign(label=at.net), f"{ZERO_INIT}-{depth}", "test_error")
            if len(set(a) & set(b)) >= 2:
                c = paired.paired(
                    f"zero-init at depth {depth}, {steps} steps",
                    "test_error",
                    f"resnet-{depth}",
                    f"{ZERO_INIT}-{depth}",
                    a,
                    b,
                )
                c.extra["steps"] = int(steps)
                cs.append(c)
        if cs:
            skeleton.decide({f"zero-init vs standard at {steps}": cs})
            out += [
                f"Test error at {steps:,} steps, standard − zero-init per seed (positive = zero-init better; one "
                "Holm family):",
                "",
                markdown.table(contrast_table(cs)),
                "",
            ]
        zg = budget_stats.contrasts(at, "test_error", deep, shallow, family=ZERO_INIT)
        if zg:
            out += [
                f"Under zero-init, ResNet-{shallow} − ResNet-{deep} per seed at {steps:,} steps (positive = "
                f"ResNet-{deep} better):",
                "",
                markdown.table(contrast_table(zg)),
                "",
            ]
    return out or ["The zero-init arm has fewer than two seeds paired with the standard runs: no contrast."]


def reach_section(runs: pd.DataFrame) -> list[str]:
    nets = sorted(runs[runs.decay_shape == "linear"].net.unique())
    rows = []
    for net in nets:
        row = {"net": net}
        for t in TARGETS:
            r = reach(runs, net, t)
            fin = [v for v in r.values() if math.isfinite(v)]
            m, s, _ = mean_std(pd.Series(fin)) if fin else (math.nan, math.nan, 0)
            # Reached at the net's lowest rung: the budget needed is at most that rung, not that rung (nothing below
            # it was trained; a net with one rung, e.g. the zero-init arm, says only this).
            lowest = int(runs[runs.net == net].steps.min())
            at_lowest = bool(fin) and all(v == lowest for v in fin)
            cell = f"≤ {lowest:,} (lowest rung)" if at_lowest else pm(m, s, len(fin)) if len(fin) > 1 else f"{m:,.0f}"
            row[f"≤ {t:g}% train err"] = (cell if fin else "-") + (
                f" ({len(r) - len(fin)} of {len(r)} not reached)" if len(fin) < len(r) else ""
            )
        rows.append(row)
    return [
        "Budget (iterations, interpolated on log2 B between the rungs) at which each net's eval-mode training "
        "error first reaches a target, per seed; mean ± sd over the seeds that reach it; '≤ B (lowest rung)' where "
        "every seed has reached it at the net's lowest rung B, so only a bound is known.",
        "",
        markdown.table(pd.DataFrame(rows)),
    ]


def saving_lines(runs: pd.DataFrame) -> list[str]:
    s = ladder_saving(runs)
    if s is None:
        return ["- No rung started from another's checkpoint: the ladder saved nothing here."]
    return [
        f"- The ladder trained {s['steps']:,} steps in {s['runs']} runs ({s['spent_s'] / 60:.1f} min of measured "
        f"training time); separate runs from step 0 would train {s['steps_alone']:,} steps, "
        f"{s['alone_s'] / 60:.1f} min at each net's measured seconds per step: **{s['saving']:.0%} saved**."
    ]


@dataclass
class Study:
    """What the report says, computed once from the ladder's runs (and the step-decay control's, if run)."""

    study: str
    profile: str
    results: pd.DataFrame
    per_run: pd.DataFrame
    ctrl: pd.DataFrame | None
    pair: tuple[int, int] | None
    gap_lines: list
    found: dict
    families: dict


def build(runs: Path, reports: Path, profile: str, study: str = "budget", control: str | None = None) -> Path:
    out = Path(reports) / study
    s = compute(runs, profile, study, control, out)
    figures(s, out)
    lines = [
        *header_section(s),
        *headline_lines(s),
        *figure_section(),
        "## Every net and budget",
        "",
        *cells_section(s.per_run, load_csvs(s.results, "curves.csv")),
        "",
        *depth_section(s),
        *questions_section(s),
        *ladder_section(s),
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"


def compute(runs: Path, profile: str, study: str, control: str | None, out: Path) -> Study:
    results = load_results(runs, study, profile, vary=VARY)
    out.mkdir(parents=True, exist_ok=True)  # after the runs passed their checks: a refused report writes nothing
    per_run = run_rows(results)
    skeleton.write_csv(per_run, out / "runs.csv")
    skeleton.write_csv(cells(per_run), out / "results.csv")
    control = control or f"{profile}-step"
    ctrl = run_rows(load_results(runs, study, control)) if run_dirs(runs, study, control) else None
    p = pair(per_run)
    gap_lines, found = gap_section(per_run, *p) if p else ([], {})
    families = {f"{METRICS[m]} by budget": cs for m, cs in found.items() if isinstance(cs, list) and cs}
    if families:
        skeleton.write_csv(skeleton.contrasts_frame([c for cs in families.values() for c in cs]), out / "contrasts.csv")
    return Study(study, profile, results, per_run, ctrl, p, gap_lines, found, families)


def figures(s: Study, out: Path) -> None:
    x = s.found.get("test_error_crossover")
    error_vs_budget(
        s.per_run,
        out / "error_vs_budget.png",
        x.steps if x and x.steps else None,
        f"{s.study}: error after each budget, mean over seeds (band: min-max); dotted: crossover",
    )


def header_section(s: Study) -> list[str]:
    budgets = sorted(s.per_run.steps.unique())
    banner = skeleton.cpu_banner(
        s.profile,
        f"Budgets {', '.join(f'{b:,}' for b in budgets)} iterations; "
        "the largest is a small fraction of the paper's 64k x 128 (see Budget), so read it "
        "as how the ordering of the nets moves with budget, not as the paper's numbers.",
    )
    plan = "[experiments/budget.md](../../experiments/budget.md)"
    return skeleton.header("Is deeper better? The budget ladder", s.results, s.study, plan, banner)


def headline_lines(s: Study) -> list[str]:
    headline = headline_section(s.found, s.per_run, *s.pair) if s.pair else []
    return ["## Is deeper better? (the plan's headline, on test error)", "", *headline, ""] if headline else []


def figure_section() -> list[str]:
    return ["## Error against budget", "", templates.fill("budget/error_figure.md"), ""]


def depth_section(s: Study) -> list[str]:
    p = s.pair
    return [
        f"## Is ResNet-{p[0]} better than ResNet-{p[1]}, and from which budget?" if p else "## Depth",
        "",
        skeleton.rule_text("Each metric's contrasts over the budgets are one Holm family."),
        "",
        *s.gap_lines,
    ]


def questions_section(s: Study) -> list[str]:
    if not s.pair:
        return []
    per_run, p = s.per_run, s.pair
    lines = [
        "## Compute-matched: which depth for a fixed budget?",
        "",
        *matched_section(per_run, *p),
        "",
        "## Degradation of plain nets across budget",
        "",
        *plain_section(per_run),
        "",
        "## Does the schedule change the ordering? (step-decay control)",
        "",
        *control_section(per_run, s.ctrl, *p),
        "",
        "## Zero-initialised residual branches on the top rung",
        "",
        *zero_init_section(per_run, *p),
        "",
        "## Budget to reach a training error",
        "",
        *reach_section(per_run),
        "",
    ]
    design = skeleton.design_line(s.families)
    return lines + ([design, ""] if design else [])


def ladder_section(s: Study) -> list[str]:
    return [
        "## What the ladder saved, and the sweep's wall time",
        "",
        *saving_lines(s.per_run),
        *skeleton.sweep_lines(s.results),
        "",
        "Per-run values: [runs.csv](runs.csv); cells: [results.csv](results.csv)"
        + ("; contrasts: [contrasts.csv](contrasts.csv)" if s.families else "")
        + ".",
    ]
