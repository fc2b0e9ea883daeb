"""reports/depth/: is deeper better? Plain vs residual across depth, from runs/depth/<profile>/."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reslab import io
from reslab.report import flow, layer_steps, markdown, plots, power, published, skeleton, templates, trend
from reslab.report import window as critical
from reslab.report.results import load_csvs, load_results
from reslab.report.stats import mean_std, pm

FAMILIES = ("plain", "resnet")
BLOWUP_LOSS = 3.0  # running training loss (nats); ln 10 = 2.30 is a net that predicts the uniform distribution


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (family, depth), g in runs.groupby(["family", "depth"]):
        tr, tr_sd, n = mean_std(g.train_error)
        te, te_sd, _ = mean_std(g.test_error)
        # A cell is at chance when its mean is within 2 binomial SEs of 90 % for the images behind one
        # run's number (the last epoch's training images; the test images).
        per_epoch = int(g.train_images.iloc[0])
        rows.append(
            {
                "family": family,
                "depth": int(depth),
                "label": f"{family}-{depth}",
                "n_seeds": len(g),
                "n_ok": int((g.status == "ok").sum()),
                "n_spikes": int(g.loss_spike.sum()),
                "train_error_mean": tr,
                "train_error_std": tr_sd,
                "test_error_mean": te,
                "test_error_std": te_sd,
                "at_chance": bool(np.isfinite(tr) and trend.at_chance(tr, per_epoch)),
                "test_at_chance": bool(np.isfinite(te) and trend.at_chance(te, int(g.eval_images.iloc[0]))),
                "peak_loss_max": float(g.peak_loss_after_first_window.max()),
                "first_loss_mean": float(g.first_window_loss.mean()),
                "wall_seconds_mean": float(g.wall_seconds.mean()),
            }
        )
    return pd.DataFrame(rows).sort_values(["family", "depth"]).reset_index(drop=True)


def published_columns(agg: pd.DataFrame, pub: pd.DataFrame, why_not: str | None) -> pd.DataFrame:
    vals, deltas, srcs = [], [], []
    for _, r in agg.iterrows():
        row = (
            published.lookup(pub, model="resnet", depth=r.depth, variant="option A", source="He2016-ResNet")
            if r.family == "resnet"
            else None
        )
        v = published.as_float(row.value) if row is not None else None
        vals.append(f"{v:.2f}" if v is not None else "-")
        srcs.append(published.cite(row) if row is not None else "-")
        if v is None:
            deltas.append("-")
        elif why_not:
            deltas.append("not comparable")
        else:
            deltas.append(f"{r.test_error_mean - v:+.2f}")
    return agg.assign(published_test_error=vals, delta=deltas, published_source=srcs)


def run_rows(results: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """One row per run: everything a reader needs to recompute the report's statistics (runs.csv)."""
    rows = []
    for _, r in results.sort_values(["family", "depth", "seed"]).iterrows():
        c = curves[(curves.label == r.label) & (curves.seed == r.seed)] if not curves.empty else curves
        blew, peak, first = blow_up(c)
        rows.append(
            {
                "net": r.label,
                "family": r.family,
                "depth": int(r.depth),
                "seed": int(r.seed),
                "status": r.status,
                "train_error": r.train_error,
                "train_loss": r.train_loss,
                "test_error": r.test_error,
                "test_loss": r.test_loss,
                "steps": int(r.steps),
                "steps_planned": int(r.steps_planned),
                "train_images": int(r.train_images),
                "eval_images": int(r.eval_images),
                "first_window_loss": first,
                "peak_loss_after_first_window": peak,
                "loss_spike": blew,
                "wall_seconds": round(float(r.wall_seconds), 1),
                "git_commit": r.git_commit,
                "numerics": r.numerics,
                "key": r.key,
            }
        )
    return pd.DataFrame(rows)


def blow_up(curve: pd.DataFrame) -> tuple[bool, float, float]:
    """(loss spike?, peak running training loss after the first probe window, loss of the first window).
    Rule of experiments/depth.md (2026-11-25 plan): a spike is a window mean above BLOWUP_LOSS after the
    first window (the first holds the loss at initialisation, which is above ln 10 = 2.30 for deep
    residual nets by construction: the variance of the residual stream grows with the number of blocks)."""
    if curve is None or curve.empty or "running_train_loss" not in curve:
        return False, math.nan, math.nan
    w = curve.sort_values("step")
    w = w[w.running_images.gt(0)]
    if w.empty:
        return False, math.nan, math.nan
    first, later = float(w.running_train_loss.iloc[0]), w.running_train_loss.iloc[1:]
    if later.empty:
        return False, math.nan, first
    peak = float(later.max())
    return (not math.isfinite(peak)) or peak > BLOWUP_LOSS, peak, first


def series(runs: pd.DataFrame, which: str, column: str = "train_error") -> tuple[list[int], list[int], np.ndarray]:
    """(depths, seeds, seeds x depths table) of final training error for 'plain' or 'resnet', or of the
    paired gap plain - resnet ('gap'). Only seeds with every depth (both families for the gap) enter;
    a diverged run counts as chance level (the plan's rule), whatever its last finite epoch showed."""
    err = runs.assign(value=runs[column].astype(float).where(runs.status == "ok", trend.CHANCE).fillna(trend.CHANCE))
    piv = {f: err[err.family == f].pivot_table(index="seed", columns="depth", values="value") for f in FAMILIES}
    if which == "gap":
        a, b = piv["plain"], piv["resnet"]
        depths = sorted(set(a.columns) & set(b.columns))
        table = (a[depths] - b[depths]) if depths else pd.DataFrame()
    else:
        table = piv[which]
        depths = sorted(table.columns)
    table = table.dropna() if len(table) else table
    if table is None or table.empty or len(depths) < 2:
        return depths, [], np.empty((0, len(depths)))
    return depths, [int(s) for s in table.index], table[depths].to_numpy(dtype=float)


HYPOTHESES = (  # name, series, what "supported" means
    ("H1", "plain", "plain nets degrade: training error rises with depth"),
    ("H2", "resnet", "residual nets improve: training error falls with depth"),
    (
        "interaction",
        "gap",
        "depth hurts plain nets more than residual nets: the paired gap plain − residual grows with depth",
    ),
)
PREDICTED = {"H1": 1, "H2": -1, "interaction": 1}  # the direction each hypothesis predicts: +1 rises, -1 falls
OUTCOME = {  # (hypothesis, trend verdict) -> answer
    ("H1", "rises"): "supported",
    ("H1", "falls"): "contradicted",
    ("H1", "flat"): "contradicted (no degradation)",
    ("H2", "falls"): "supported",
    ("H2", "flat"): "supported in its weak form (no degradation, no gain)",
    ("H2", "rises"): "contradicted (deeper residual nets are worse)",
    ("interaction", "rises"): "supported",
    ("interaction", "falls"): "contradicted",
    ("interaction", "flat"): "contradicted (no interaction)",
}


def analyse(runs: pd.DataFrame) -> list[tuple[str, str, trend.Trend | None]]:
    """The three primary tests, Holm-corrected together; seeds needed for the inconclusive ones."""
    found = []
    for name, which, _ in HYPOTHESES:
        depths, seeds, y = series(runs, which)
        found.append((name, which, trend.trend(which, depths, y) if len(seeds) >= 2 else None, y))
    trend.decide_all([t for _, _, t, _ in found if t is not None])
    out = []
    m = len(HYPOTHESES)
    for name, which, t, y in found:
        if t is not None and t.verdict == "inconclusive":
            # The rule's power at the strictest Holm step (alpha / number of tests), at the plan's effects
            # (experiments/depth.md, amendment of 2026-12-03) with the observed sds, not the observed means:
            # a planned trend in the predicted direction, and a truly flat series for 'flat'.
            d = PREDICTED[name]
            t.seeds_needed = trend.seeds_needed(
                trend.design_means(len(t.depths), power.DESIGN_EFFECT_PP, d),
                y.std(0, ddof=1),
                alpha=trend.ALPHA / m,
                direction=d,
            )
            t.seeds_flat = power.seeds_needed(
                power.EQUIVALENCE_EFFECT_PP,
                t.delta_sd,
                m,
                "no practical difference",
                alpha=trend.ALPHA,
                practical=trend.PRACTICAL_PP,
            )
        out.append((name, which, t))
    return out


def secondary_lines(runs: pd.DataFrame) -> list[str]:
    """The same tests on test error (full test set): reported beside the verdicts, not part of them."""
    lines = []
    for name, which, claim in HYPOTHESES:
        depths, seeds, y = series(runs, which, "test_error")
        if len(seeds) < 2:
            continue
        t = trend.trend(which, depths, y)
        what = "gap plain − residual" if which == "gap" else f"{which} test error"
        lines.append(
            f"- {name} on test error: {what}, depth {t.depths[-1]} minus {t.depths[0]}: {t.ci_text()}; "
            f"tau {t.tau:+.2f}, exact two-sided p = {t.p:.3g} (unadjusted)."
        )
    return lines


# Amendment of 2026-12-04 (experiments/depth.md; issue 24): H2 asks whether depth *pays*, and at the `cpu` budget (800
# iterations, 0.31% of the paper's images) the deep nets' curves are still falling: a budget that short can make deeper
# nets look worse whatever depth does at convergence. So below the paper's budget H2 is "not testable at this budget":
# the pre-registered rule's reading stays on the record beside it, and the answer comes from the budget study.
H2_TESTABLE_PROFILES = ("paper",)
NOT_TESTABLE = "not testable at this budget"


def h2_budget_reading(name: str, profile: str | None) -> bool:
    """True when the hypothesis' reading at this profile is a budget reading (H2 below the paper's budget)."""
    return name == "H2" and profile is not None and profile not in H2_TESTABLE_PROFILES


def budget_pointer(reports: Path | None) -> str:
    """Where the budget-dependent answer lives: the budget study's report if it exists, else its plan."""
    if reports is not None and (Path(reports) / "budget" / "README.md").is_file():
        return "the budget study, [reports/budget](../budget/README.md)"
    return "the budget study ([experiments/budget.md](../../experiments/budget.md); not run yet)"


def answer_of(name: str, t: trend.Trend | None) -> str:
    if t is None:
        return "not tested (fewer than 2 complete seeds)"
    return OUTCOME.get((name, t.verdict), "inconclusive")


def verdict_lines(
    runs: pd.DataFrame, tests, profile_steps: int, profile: str | None = None, pointer: str = ""
) -> list[str]:
    lines = []
    for (name, which, t), (_, _, claim) in zip(tests, HYPOTHESES):
        if t is None:
            lines.append(f"- **{name}** ({claim}): not tested, fewer than 2 seeds with every depth finished.")
            continue
        ans = answer_of(name, t)
        what = "gap plain − residual" if which == "gap" else f"{which} training error"
        head = f"**{name}: {ans}.**"
        if h2_budget_reading(name, profile):
            head = (
                f"**{name}: {NOT_TESTABLE}** (amendment of 2026-12-04; the rule of 2026-11-25 reads: *{ans}*, a "
                "budget reading)."
            )
        text = (
            f"- {head} Claim: {claim}. {what}, depth {t.depths[-1]} minus depth {t.depths[0]}: "
            f"{t.ci_text()} over {t.n_seeds} seeds; seasonal Kendall tau = {t.tau:+.2f} (S = {t.S:+.0f}), exact "
            f"two-sided p = {t.p:.3g}, Holm-adjusted p = {t.p_holm:.3g}; flat test (TOST of the contrast against "
            f"±{trend.PRACTICAL_PP:g} pp) Holm-adjusted p = {t.p_flat_holm:.3g} (alpha {trend.ALPHA}, practical "
            f"threshold {trend.PRACTICAL_PP:g} pp)."
        )
        if t.verdict == "inconclusive":
            trend_seeds = f"**{t.seeds_needed}**" if t.seeds_needed and t.seeds_needed > 0 else "more than 50"
            way = "rise" if PREDICTED[name] > 0 else "fall"
            text += (
                f" Inconclusive. Seeds the rule needs for {trend.POWER:.0%} power at alpha "
                f"{trend.ALPHA}/{len(HYPOTHESES)} (simulated at the plan's effects with the observed sds, not at "
                f"the observed means): {trend_seeds} to call a true {power.DESIGN_EFFECT_PP:g} pp {way} (deepest − "
                f"shallowest, even steps over the depths), "
                f"**{power.needed_text(t.seeds_flat, power.EQUIVALENCE_EFFECT_PP, 'no practical difference')}** "
                f"to call a truly flat series (contrast {power.EQUIVALENCE_EFFECT_PP:g} pp) flat."
            )
        if h2_budget_reading(name, profile):
            text += (
                f" At {profile_steps} iterations the deep residual nets' curves are still falling, so this budget "
                f"alone can put them behind; whether depth pays, and from which budget, is answered by {pointer}."
            )
        lines.append(text)
    return lines


def headline(
    runs: pd.DataFrame,
    agg: pd.DataFrame,
    tests,
    profile_steps: int,
    batch: int,
    profile: str | None = None,
    pointer: str = "",
) -> list[str]:
    """What happened, before any verdict: blow-ups, nets stuck at chance, and the answer in one line."""
    out = []
    spikes = runs[runs.loss_spike | (runs.status != "ok")]
    chance_nets = set(agg[agg.at_chance].label)
    if len(spikes):
        nets = spikes.groupby("net").seed.apply(lambda s: ", ".join(map(str, sorted(s))))
        recovered = [n for n in nets.index if n not in chance_nets and (runs[runs.net == n].status == "ok").all()]
        out.append(
            f"**Loss spikes** (running training loss above {BLOWUP_LOSS:g} after the first probe window, or "
            "non-finite) in "
            + "; ".join(f"{n} (seed {s})" for n, s in nets.items())
            + ". "
            + (f"Recovered (final training error clearly below chance): {', '.join(recovered)}. " if recovered else "")
            + (
                f"Not recovered: {', '.join(sorted(set(nets.index) - set(recovered)))}."
                if set(nets.index) - set(recovered)
                else ""
            )
        )
    else:
        out.append(
            f"No loss spike: after the first probe window the running training loss stayed below {BLOWUP_LOSS:g} "
            "in every run."
        )
    first = agg[agg.first_loss_mean > math.log(10) + 0.5]
    if len(first):
        out.append(
            "Initial loss above chance (first probe window, mean over seeds): "
            + ", ".join(f"{r.label} {r.first_loss_mean:.2f}" for _, r in first.iterrows())
            + " (ln 10 = 2.30): "
            "consistent with the identity path summing the variance of every block at initialisation (no zero-init of "
            "the last BN)."
        )
    chance = agg[agg.at_chance]
    if len(chance):
        out.append(
            "**Stuck at chance** (mean training error within 2 binomial SEs of 90 %): "
            + ", ".join(chance.label)
            + ". Their ordering is noise; the rank tests treat them as ties in effect."
        )
    res = {name: (t, answer_of(name, t)) for name, _, t in tests}
    h1, h2, ix = (res.get(k, (None, "")) for k in ("H1", "H2", "interaction"))
    h2_text = (
        f"*{NOT_TESTABLE}* (the pre-registered rule reads *{h2[1]}*, a budget reading; see {pointer})"
        if h2[0] is not None and h2_budget_reading("H2", profile)
        else f"*{h2[1]}*"
    )
    out.append(
        f"**Answer (CPU budget: {profile_steps} iterations, {profile_steps * batch:,} images):** plain nets "
        f"degrade with depth: *{h1[1]}*; the shortcut removes the depth penalty (interaction): *{ix[1]}*; "
        f"deeper residual nets improve: {h2_text}."
    )
    if h2[0] is not None and h2[1] != "supported":
        pub = published.load()
        r20 = published.lookup(pub, model="resnet", depth=20, variant="option A", source="He2016-ResNet")
        r110 = published.lookup(pub, model="resnet", depth=110, variant="option A", source="He2016-ResNet")
        paper = (
            f" (He et al. report test error {r20.value} % for ResNet-20 and {r110.value} % for ResNet-110, "
            f"{published.cite(r110)})"
            if r20 is not None and r110 is not None
            else ""
        )
        # The paper's budget in images (64k iterations at batch 128), not in iterations: at batch 32 a share of the
        # iterations reads four times larger than the share of the training the nets have seen.
        seen = profile_steps * batch
        out.append(
            f"At {profile_steps} iterations of batch {batch} ({seen:,} images seen, "
            f"{seen / markdown.PAPER_IMAGES:.2%} of the paper's 64k x 128) deeper residual nets have not caught up "
            "with shallower ones: more layers train more slowly per iteration early on. The "
            f"paper profile (`PROFILE=paper`, a GPU job) is where the benefit of depth shows{paper}; this "
            "budget tests the *ordering of the failure*, not the benefit."
        )
    return out


def fig7_labels(results: pd.DataFrame) -> list[str]:
    """The nets whose layer responses are drawn: the paper's Fig. 7 depths where the study has them, else its
    shallowest and deepest."""
    present = sorted(results.depth.unique())
    fig7 = [d for d in (20, 56, 110) if d in present] or [present[0], present[-1]]
    return [f"{f}-{d}" for f in FAMILIES for d in fig7]


@dataclass
class Study:
    """What the report says, computed once from the runs (and the at-initialisation files of `make grad-flow`)."""

    study: str
    profile: str
    results: pd.DataFrame
    per_run: pd.DataFrame
    agg: pd.DataFrame
    curves: pd.DataFrame
    tests: list
    steps: int
    pointer: str
    why_not: str | None
    flow: dict  # the gradient-flow sections' lines and summaries (reslab.report.flow)
    window: list = field(default_factory=list)  # the critical window's lines (reslab.report.window)


def build(runs: Path, reports: Path, profile: str, study: str = "depth") -> Path:
    """reports/<study>/ from runs/<study>/<profile>/ (a pilot is a study of its own, e.g. depth-pilot)."""
    out = Path(reports) / study
    s = compute(runs, reports, profile, study, out)
    figures(s, out)
    lines = [
        *header_section(s),
        *what_happened_section(s),
        *verdicts_section(s),
        *recipe_section(s),
        *results_section(s),
        *gradient_flow_section(s),
        "",
        *critical_window_section(s),
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"


def compute(runs: Path, reports: Path, profile: str, study: str, out: Path) -> Study:
    results = load_results(runs, study, profile)
    out.mkdir(parents=True, exist_ok=True)  # after the runs passed their checks: a refused report writes nothing
    curves = load_csvs(results, "curves.csv")
    per_run = run_rows(results, curves)
    skeleton.write_csv(per_run, out / "runs.csv")
    agg = aggregate(per_run)
    params = results.groupby("label")[["params", "flops"]].first()
    agg["params"] = agg.label.map(params.params)
    agg["flops"] = agg.label.map(params.flops)
    why_not = published.comparability(profile, results.data_checksum.iloc[0], results.data_format.iloc[0])
    agg = published_columns(agg, published.load(), why_not)
    skeleton.write_csv(agg, out / "results.csv")
    # The gradient-flow sections compute their tables and draw their own figures (reslab.report.flow).
    init_lines, _, _ = flow.init_section(Path(runs) / "gradflow" / "init.csv", out)
    signal_lines, readings = flow.signal_section(Path(runs) / "gradflow" / "signal.csv", out)
    train_lines, train_summary = flow.training_section(load_csvs(results, "grad_norms.csv"), results, out, "gradflow")
    updates = load_csvs(results, "updates.csv")
    tsig_lines, tsig_summary = flow.training_signal_section(load_csvs(results, "signal.csv"), updates, out)
    step_lines, step_nets = layer_steps.section(updates, results, skeleton.profile_cfg(results), out)
    resp_lines = flow.response_section(load_csvs(results, "responses.csv"), fig7_labels(results), out, "responses.png")
    window_lines = critical.section(load_csvs(results, "signal.csv"), curves, results, out)
    return Study(
        study=study,
        profile=profile,
        results=results,
        per_run=per_run,
        agg=agg,
        curves=curves,
        tests=analyse(per_run),
        steps=int(results.steps_planned.max()),
        pointer=budget_pointer(reports),
        why_not=why_not,
        flow={
            "init": init_lines,
            "signal": signal_lines,
            "readings": readings,
            "train": train_lines,
            "train_summary": train_summary,
            "tsig": tsig_lines,
            "tsig_summary": tsig_summary,
            "steps": step_lines,
            "step_nets": step_nets,
            "responses": resp_lines,
        },
        window=window_lines,
    )


def figures(s: Study, out: Path) -> None:
    results, curves, profile = s.results, s.curves, s.profile
    drops = sorted({int(x) for v in results.get("lr_drop_steps", pd.Series(dtype=object)).dropna() for x in v})
    if not curves.empty:
        plots.learning_curves(
            curves,
            [f for f in FAMILIES if f in set(curves.family)],
            out / "curves.png",
            drops=drops,
            title=f"profile {profile}: error on fixed image sets, mean over seeds (band: min-max)",
        )
    else:
        metrics = load_csvs(results, "metrics.csv")
        plots.training_curves(
            metrics,
            [f for f in FAMILIES if f in set(metrics.family)],
            out / "curves.png",
            title=f"profile {profile}: train (dashed) and test (bold) error, mean over seeds",
        )
    plots.error_vs_depth(s.per_run, out / "error_vs_depth.png", title=f"profile {profile}: final error by depth")


def header_section(s: Study) -> list[str]:
    banner = skeleton.cpu_banner(
        s.profile,
        f"It trains for {s.steps} iterations on a subset, so the errors are far above "
        "the paper's; what it tests is whether deeper plain nets train worse than shallower ones "
        "(degradation) and whether the shortcut removes that, within this budget.",
    )
    plan = (
        "[experiments/depth.md](../../experiments/depth.md), section of 2026-11-25 (fixed before the confirmatory run)"
    )
    return skeleton.header("Is deeper better? Plain vs residual nets across depth", s.results, s.study, plan, banner)


def what_happened_section(s: Study) -> list[str]:
    batch = int(s.results.batch_size.iloc[0])
    lines = headline(s.per_run, s.agg, s.tests, s.steps, batch, s.profile, s.pointer)
    return ["## What happened", "", *("- " + h for h in lines), ""]


def verdicts_section(s: Study) -> list[str]:
    return [
        "## Verdicts (computed by the pre-registered rules)",
        "",
        *verdict_lines(s.per_run, s.tests, s.steps, s.profile, s.pointer),
        "",
        templates.fill("depth/rules.md", alpha=trend.ALPHA, practical=f"{trend.PRACTICAL_PP:g}"),
        "",
        "Secondary (fixed in the plan as reported, not decided): the same tests on the final test error.",
        "",
        *secondary_lines(s.per_run),
        "",
    ]


def recipe_section(s: Study) -> list[str]:
    return ["## How the numbers were made", "", *recipe_lines(s.results, s.steps), ""]


def results_section(s: Study) -> list[str]:
    agg = s.agg
    table = pd.DataFrame(
        {
            "net": agg.label,
            "depth": agg.depth,
            "train err % (mean ± sd)": [
                pm(m, sd, n) + (" (chance)" if c else "")
                for m, sd, n, c in zip(agg.train_error_mean, agg.train_error_std, agg.n_seeds, agg.at_chance)
            ],
            "test err % (mean ± sd)": [
                pm(m, sd, n) + (" (chance)" if c else "")
                for m, sd, n, c in zip(agg.test_error_mean, agg.test_error_std, agg.n_seeds, agg.test_at_chance)
            ],
            "seeds": agg.n_seeds,
            "loss spikes": agg.n_spikes,
            "first-window loss": agg.first_loss_mean.map("{:.2f}".format),
            "peak loss later": agg.peak_loss_max.map("{:.2f}".format),
            "plain − this, train err (pp)": [_gap(agg, r) for _, r in agg.iterrows()],
            "params": agg.params.map("{:,}".format),
            "FLOPs (fwd, 1 img)": agg.flops.map("{:,}".format),
            "published test err %": agg.published_test_error,
            "Δ test (ours − pub.)": agg.delta,
            "source": agg.published_source,
            "s/run": agg.wall_seconds_mean.map("{:.0f}".format),
        }
    )
    published_line = (
        s.why_not + ", so no delta is computed" if s.why_not else "like-for-like (paper profile, official data)"
    )
    return [
        "## Results",
        "",
        templates.fill("depth/results.md", blowup=f"{BLOWUP_LOSS:g}"),
        "",
        markdown.table(table),
        "",
        f"Published numbers: {published_line}.",
        "Per-run values (every statistic above can be recomputed from them): [runs.csv](runs.csv); aggregated rows: "
        "[results.csv](results.csv).",
        "",
        templates.fill("depth/figures.md"),
        "",
    ]


def gradient_flow_section(s: Study) -> list[str]:
    f = s.flow
    return [
        templates.fill(
            f"depth/gradient_flow_{flow.READING_STATISTIC}.md",
            band=f"{flow.sig.BAND:g}",
            rate_band=f"{flow.sig.GSC_RATE_BAND:.3g}",
            old_threshold=f"{flow.VANISHING_RATIO:g}",
        ),
        "",
        "### The backward signal at initialisation (size-free)",
        "",
        *f["signal"],
        "",
        "### Weight-gradient norms at initialisation (first study's statistic, not size-free)",
        "",
        templates.fill("depth/weight_gradients.md"),
        "",
        *f["init"],
        "",
        "### The backward signal during training",
        "",
        *f["tsig"],
        "",
        "### Dead, vanishing, exploding or healthy: the step each layer takes",
        "",
        *f["steps"],
        "",
        "### Weight-gradient ratio during training (first study's statistic)",
        "",
        *f["train"],
        *(_train_ratio_lines(f["train_summary"])),
        "",
        "### Layer responses of the trained nets (ResNet Fig. 7)",
        "",
        *f["responses"],
        "",
        "### The literature",
        "",
        *flow.literature_lines(f["readings"]),
        "",
        "### What the gradient measurements support",
        "",
        mechanism(s.per_run, f["readings"], answer_of("H1", s.tests[0][2]), f["tsig_summary"], f["step_nets"]),
        "",
        "Per-run outputs (config, environment, metrics, curves, gradient probes, responses) are under "
        f"`runs/{s.study}/{s.profile}/`.",
    ]


def critical_window_section(s: Study) -> list[str]:
    """When plain and residual nets of one depth part, in the first training steps (issue 25; reslab.report.window)."""
    return list(s.window)


def recipe_lines(results: pd.DataFrame, steps: int) -> list[str]:
    """Everything needed to rebuild a run from the report alone."""
    r = results.iloc[0]

    def uniq(col):
        return sorted({str(v) for v in results[col]}) if col in results else ["n/a"]

    warm = (
        results.groupby("depth").apply(
            lambda g: (
                f"{int(g.warmup_steps.iloc[0])} steps at lr {g.warmup_lr.iloc[0]}"
                if "warmup_steps" in g and g.warmup_steps.iloc[0]
                else "none"
            ),
            include_groups=False,
        )
        if "warmup_steps" in results
        else pd.Series(dtype=str)
    )
    commits = results.groupby("git_commit").size()
    lines = [
        f"- Iterations: {steps} per run = {int(r.get('steps_per_epoch', 0) or 0)} steps per epoch x "
        f"{int(r.epochs_done)} epochs at batch {r.get('batch_size', 'n/a')} on {int(r.train_images)} training images "
        f"({int(r.get('images_dropped_per_epoch', 0) or 0)} images dropped per epoch by the last partial batch).",
        f"- Learning rate: {r.get('lr', 'n/a')}, multiplied by {r.get('lr_gamma', 'n/a')} at step(s) "
        f"{', '.join(uniq('lr_drop_steps'))}; warm-up per depth: "
        + ", ".join(f"{d}: {w}" for d, w in warm.items())
        + ".",
        f"- Final test error on {', '.join(uniq('eval_images'))} images of the {', '.join(uniq('eval_split'))} split.",
        f"- Curves: fixed class-balanced sets of {', '.join(uniq('curve_train_images'))} training and "
        f"{', '.join(uniq('curve_test_images'))} test images, eval mode, at steps {', '.join(uniq('curve_steps'))}.",
        f"- Gradient probe during training: every {', '.join(uniq('grad_probe_every_steps'))} steps, one training "
        f"batch.",
        f"- Threads per run: {', '.join(uniq('threads'))}; device {', '.join(uniq('device'))}; torch "
        f"{', '.join(uniq('torch'))}.",
        "- Commit of the runs: "
        + ", ".join(f"{c} ({n} runs)" for c, n in commits.items())
        + " (per run: `git_commit` in runs.csv).",
    ]
    lines += skeleton.sweep_lines(results)
    return lines


def _gap(agg: pd.DataFrame, row) -> str:
    if row.family == "plain":
        return "-"
    plain = agg[(agg.family == "plain") & (agg.depth == row.depth)]
    if plain.empty:
        return "-"
    return f"{plain.train_error_mean.iloc[0] - row.train_error_mean:+.2f}"


def _train_ratio_lines(s: pd.DataFrame) -> list[str]:
    if s.empty:
        return []
    lines = ["", "| series | depth | ratio median [min, max] |", "|---|---|---|"]
    for _, r in s.sort_values(["series", "depth"]).iterrows():
        lines.append(f"| {r.series} | {int(r.depth)} | {flow.fmt_ratio(r.ratio_median, r.ratio_min, r.ratio_max)} |")
    return lines


def _training_readings(summary: pd.DataFrame | None, family: str, depth: int) -> tuple[str, str]:
    """(majority reading over the training probes after step 0, the readings as text) for one net."""
    if summary is None or summary.empty:
        return "", ""
    g = summary[(summary.family == family) & (summary.depth == depth) & (summary.step > 0)].sort_values("step")
    if g.empty:
        return "", ""
    if flow.READING_STATISTIC == "gsc" and "gsc_rate_median" in g and g.gsc_rate_median.notna().all():
        reads = [flow.sig.gsc_reading(m) for m in g["gsc_rate_median"]]
        values = "GSC per block " + ", ".join(f"{m:.3g}" for m in g["gsc_rate_median"])
    else:
        reads = [flow.sig.reading(m) for m in g["median"]]
        values = "ratios " + ", ".join(f"{m:.2g}" for m in g["median"])
    top = max(set(reads), key=reads.count)
    return top, f"{top} at {reads.count(top)} of {len(reads)} training probes ({values})"


def _init_value(r) -> str:
    """The number a reading at init comes from, with its band; the other statistic's reading where it differs."""
    gsc = (
        f"GSC per block {r.gsc_rate_median:.3g}, band [{1 / flow.sig.GSC_RATE_BAND:.3g}, {flow.sig.GSC_RATE_BAND:.3g}]"
    )
    ratio = f"ratio {r.ratio_median:.3g}, band [{1 / flow.sig.BAND:g}, {flow.sig.BAND:g}]"
    if flow.READING_STATISTIC == "gsc":
        other = (
            f"; the RMS ratio ({r.ratio_median:.3g}) reads {r.ratio_reading}" if r.ratio_reading != r.reading else ""
        )
        return gsc + other
    other = f"; the GSC rate ({r.gsc_rate_median:.3g}) reads {r.gsc_reading}" if r.gsc_reading != r.reading else ""
    return ratio + other


def step_reading(r) -> str:
    """A net's step reading for the mechanism paragraph, from its row of layer_steps.net_states: its input quarter's
    reading, except that a healthy input quarter reads *comparable* only when every layer is healthy in every seed
    (else *mixed*)."""
    if r.input_reading != "healthy":
        return r.input_reading
    return "comparable" if r.all_healthy else "mixed"


def _step_row(nets: pd.DataFrame | None, family: str, depth: int):
    if nets is None or nets.empty:
        return None
    r = nets[(nets.family == family) & (nets.depth == depth)]
    return None if r.empty else r.iloc[0]


def _step_text(r, base: int) -> str:
    """The per-net clause: its step reading and the numbers the step-state table shows for it."""
    if r is None:
        return ""
    if r.depth == base:
        return ", steps the reference of the others"
    if r.input_reading == "dead":
        return (
            f", steps **dead** on the input side ({layer_steps.count_text(r, 'dead')} of {r.layers} layers at the "
            "weight-decay floor)"
        )
    return f", input-quarter steps **{r.input_reading}** ({r.input_vs_reference:.3g} x plain-{base}'s)"


def _init_sentences(by_reading: dict) -> list[str]:
    out = []
    if by_reading.get("vanishing"):
        out.append(
            f"At depth {_depths(by_reading['vanishing'])} the degradation comes with a vanishing backward signal at "
            "init: consistent with the vanishing-gradient story there."
        )
    if by_reading.get("exploding"):
        out.append(
            f"At depth {_depths(by_reading['exploding'])} the degraded plain nets have an *exploding* backward signal "
            "at init (larger toward the input), not a vanishing one: at initialisation the data contradict the "
            "vanishing-gradient story there and are consistent with gradient explosion in deep BN nets."
        )
    if by_reading.get("neither"):
        out.append(
            f"At depth {_depths(by_reading['neither'])} the plain nets degrade while the signal at init is of "
            "comparable size at both ends: gradient size at init does not explain it."
        )
    return out


TRAINING_SAID = {
    "vanishing": "a *vanishing* backward signal once training has started: consistent with the vanishing-gradient "
    "story, at least after the first updates",
    "exploding": "an *exploding* backward signal during training",
    "neither": "a backward signal of comparable size at both ends (per-block GSC in band)",
}


def _training_sentences(by_training: dict, by_steps: dict) -> list[str]:
    if not by_training:
        return ["The training runs recorded no backward-signal probes, so only the readings at init are stated."]
    out = [
        f"During training, the degraded plain nets at depth {_depths(ds)} show {TRAINING_SAID[k]}."
        for k, ds in sorted(by_training.items())
    ]
    # A signal in band at the block outputs says nothing of the step a layer takes: say so where the steps are not.
    moved = set(by_training.get("neither", [])) & {d for k in ("dead", "vanishing") for d in by_steps.get(k, [])}
    if moved:
        out.append(
            f"A signal in band does not make the layers move: at depth {_depths(sorted(moved))} the input layers' "
            "steps are dead or far smaller than the shallowest net's (the step-state table)."
        )
    return out


def _step_sentences(by_steps: dict, nets: pd.DataFrame | None, base: int) -> list[str]:
    """One sentence per step reading among the degraded plain nets, each from the numbers of the step-state table."""
    if nets is None or nets.empty:
        return ["The runs recorded no update sizes, so the step each layer takes is not read."]
    rows = {k: [_step_row(nets, "plain", d) for d in ds] for k, ds in by_steps.items()}
    out = []
    for r in rows.get("dead", []):
        out.append(
            f"plain-{r.depth} is **dead, not vanishing**: in {r.dead_seeds} of {r.seeds} seeds "
            f"{layer_steps.count_text(r, 'dead')} of its {r.layers} layers (first to last: "
            f"{layer_steps.span_text(r)}) take the weight-decay floor's step at every counted probe, so their update "
            "is weight decay's alone and the loss gradient does not move them."
        )
    if rows.get("vanishing"):
        out.append(
            f"At depth {_depths([r.depth for r in rows['vanishing']])} the input layers take much smaller steps than "
            f"plain-{base}'s at the same position (input quarter, median over seeds: "
            + ", ".join(f"{r.input_vs_reference:.3g} x" for r in rows["vanishing"])
            + f"; most input-quarter layers dead or below 1/{layer_steps.STEP_BAND:g} of plain-{base}'s in "
            + ", ".join(f"{r.input_seeds} of {r.seeds} seeds" for r in rows["vanishing"])
            + "): gradient (step) size does explain part of the degradation there."
        )
    if rows.get("exploding"):
        out.append(
            f"At depth {_depths([r.depth for r in rows['exploding']])} the input layers take much larger steps than "
            f"plain-{base}'s at the same position (input quarter "
            + ", ".join(f"{r.input_vs_reference:.3g} x" for r in rows["exploding"])
            + f", above {layer_steps.STEP_BAND:g}): steps too large, not too small, go with the degradation there."
        )
    if rows.get("mixed"):
        out.append(
            f"At depth {_depths([r.depth for r in rows['mixed']])} the input quarter's steps are comparable with "
            f"plain-{base}'s but not every layer's is (dead, vanishing or exploding layers in some seed): "
            "step size is not ruled out there."
        )
    if rows.get("comparable"):
        out.append(
            f"At depth {_depths([r.depth for r in rows['comparable']])} every layer's step is within "
            f"[1/{layer_steps.STEP_BAND:g}, {layer_steps.STEP_BAND:g}] x plain-{base}'s at the same position in every "
            "seed (input quarter "
            + ", ".join(f"{r.input_vs_reference:.3g} x" for r in rows["comparable"])
            + "), none dead: the degradation there is an optimisation difficulty that gradient (step) size does not "
            "explain."
        )
    return out


def _depths(ds) -> str:
    return ", ".join(str(int(d)) for d in ds)


def mechanism(
    runs: pd.DataFrame,
    readings: pd.DataFrame,
    h1: str,
    train_summary: pd.DataFrame | None = None,
    step_nets: pd.DataFrame | None = None,
) -> str:
    """One computed sentence per plain-BN depth: its reading at init and during training, its step reading (dead,
    vanishing, exploding or healthy; reslab.report.layer_steps) and whether it degraded; then what the degraded nets'
    readings say, each sentence from the numbers of a table above. Only written when H1 (degradation) is supported:
    without degradation there is nothing to explain."""
    if h1 != "supported":
        return (
            f"_H1 (degradation) is {h1}, so there is no established degradation for a mechanism to explain; "
            "the measurements above are descriptive._"
        )
    if readings is None or readings.empty:
        return "_The backward signal at initialisation was not measured (`make grad-flow`), so no statement is made._"
    plain = runs[runs.family == "plain"].groupby("depth").train_error.mean()
    base = int(plain.index.min())
    parts, by_reading, by_training, by_steps = [], {}, {}, {}
    for d, err in plain.items():
        r = readings[
            (readings.family == "plain")
            & (readings.norm == "bn")
            & (readings.depth == d)
            & ~readings.control.astype(bool)
        ]
        if r.empty:
            continue
        r = r.iloc[0]
        gap = err - plain[base]
        degraded = d != base and gap >= trend.PRACTICAL_PP
        during, during_text = _training_readings(train_summary, "plain", d)
        step = _step_row(step_nets, "plain", d)
        parts.append(
            f"plain-{int(d)} (BN): **{r.reading}** at init ({_init_value(r)})"
            + (f", **{during_text}**" if during_text else "")
            + _step_text(step, base)
            + f"; training error {gap:+.1f} pp against plain-{base}"
            + (" (degraded)." if degraded else ".")
        )
        if degraded:
            by_reading.setdefault(r.reading, []).append(int(d))
            if during:
                by_training.setdefault(during, []).append(int(d))
            if step is not None:
                by_steps.setdefault(step_reading(step), []).append(int(d))
    parts += _init_sentences(by_reading)
    parts += _training_sentences(by_training, by_steps)
    parts += _step_sentences(by_steps, step_nets, base)
    return " ".join(parts)
