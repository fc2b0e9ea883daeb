"""reports/shortcut/: is the shortcut effective, and which shortcut? From runs/shortcut/<profile>/."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from reslab import io
from reslab.report import flow, markdown, plots, published
from reslab.report.depth import _profile_cfg
from reslab.report.results import load_csvs, load_results
from reslab.report.stats import ALPHA, PRACTICAL_PP, compare, mean_std, pm

BASELINE = "identity-A"
MODIFIED = ["projection-C", "scale-shortcut-0.5", "scale-both-0.5", "gate-exclusive-b0", "gate-exclusive-b-6",
            "gate-shortcut-b0", "gate-shortcut-b-6", "dropout-0.5"]
CHANCE = 90.0  # a diverged run with no finite metric counts as chance-level error
TABLES = {("He2016-ResNet", "Table 3"), ("He2016-Identity", "Table 1"), ("He2016-Identity", "Table 2")}


def _err(g: pd.DataFrame, col: str) -> list[float]:
    """Per-seed errors; a diverged run keeps its last good value, or chance if it had none."""
    return [v if (v is not None and np.isfinite(v)) else CHANCE for v in g[col].astype(float)]


def contrast(df: pd.DataFrame, worse: str, better: str, col: str) -> dict:
    """Is `worse` - `better` > 0? Welch t-test, one-sided, plus the practical threshold."""
    a, b = _err(df[df.variant_name == worse], col), _err(df[df.variant_name == better], col)
    diff, se, na, nb = compare(a, b)
    p = math.nan
    if na > 1 and nb > 1 and np.isfinite(se) and se > 0:
        p = float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
        p_rev = float(stats.ttest_ind(a, b, equal_var=False, alternative="less").pvalue)
    else:
        p_rev = math.nan
    diverged = bool((df[df.variant_name == worse].status != "ok").any())
    if diverged and not (df[df.variant_name == better].status != "ok").any():
        verdict = "supported (diverged)"
    elif diff > PRACTICAL_PP and p < ALPHA:
        verdict = "supported"
    elif diff < -PRACTICAL_PP and p_rev < ALPHA:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    return {"worse": worse, "better": better, "metric": col, "diff": diff, "se": se, "p": p, "n": min(na, nb),
            "verdict": verdict}


def _contrast_text(c: dict) -> str:
    se = f" ± {c['se']:.2f} (se)" if np.isfinite(c["se"]) else ""
    p = f", one-sided Welch p = {c['p']:.3g}" if np.isfinite(c["p"]) else ", no seed spread: no test"
    return (f"{c['worse']} − {c['better']} {c['metric'].replace('_', ' ')} = {c['diff']:+.2f}{se} pp over "
            f"{c['n']} seed(s){p} → **{c['verdict']}**")


def verdicts(df: pd.DataFrame) -> list[str]:
    have = set(df.variant_name)
    lines = []
    if {"plain", BASELINE} <= have:
        c = contrast(df, "plain", BASELINE, "train_error")
        t = contrast(df, "plain", BASELINE, "test_error")
        lines += ["**H1: a shortcut beats none at equal depth and parameters.** " + _contrast_text(c)
                  + "; on test error: " + _contrast_text(t) + "."]
    mods = [m for m in MODIFIED if m in have]
    if BASELINE in have and mods:
        cs = [contrast(df, m, BASELINE, "test_error") for m in mods]
        n_sup = sum(c["verdict"].startswith("supported") for c in cs)
        n_con = sum(c["verdict"] == "contradicted" for c in cs)
        overall = ("supported" if n_sup == len(cs) else "contradicted" if n_con else
                   "partly supported" if n_sup else "inconclusive")
        lines += ["", f"**H2: the clean identity beats every modified shortcut** → **{overall}** "
                      f"({n_sup} of {len(cs)} modified shortcuts are worse than the identity by the rule, "
                      f"{n_con} better):", ""]
        lines += [f"- {_contrast_text(c)}" for c in cs]
    if {"preact", BASELINE} <= have:
        c = contrast(df, BASELINE, "preact", "test_error")
        lines += ["", "**H3: full pre-activation beats post-activation.** " + _contrast_text(c) + "."]
    return lines


def published_rows(df: pd.DataFrame, agg: pd.DataFrame, why_not: str | None) -> pd.DataFrame:
    pub = published.load()
    pub = pub[[(s, t) in TABLES for s, t in zip(pub.source, pub.table)]]
    depth = int(df.depth.iloc[0])
    rows = []
    for _, p in pub.iterrows():
        ours = agg[[p.variant in v for v in agg.published]]
        ours = ours[(ours.variant_name == "plain") == (p.model == "plain")] if len(ours) else ours
        mine = ours.iloc[0] if len(ours) else None
        reasons = []
        if p.dataset != "CIFAR-10":
            reasons.append(f"published on {p.dataset}")
        if p.depth != str(depth):
            reasons.append(f"published at depth {p.depth}, ours {depth}")
        if why_not:
            reasons.append(why_not)
        value = published.as_float(p.value)
        ours_te = mine.test_error_mean if mine is not None else math.nan
        delta = "not comparable: " + "; ".join(reasons) if reasons else (
            f"{ours_te - value:+.2f}" if value is not None and np.isfinite(ours_te) else
            ("ours fails too" if p.value == "fail" and ours_te > 20 else "-"))
        rows.append({"published row": f"{p.model}-{p.depth} {p.variant}", "source": published.cite(p),
                     "published": p.value + (" (fail = > 20% error)" if p.value == "fail" else ""),
                     "our variant": mine.variant_name if mine is not None else "-",
                     f"ours (depth {depth}) test err %": pm(mine.test_error_mean, mine.test_error_std, mine.n_seeds)
                     if mine is not None else "-", "delta": delta})
    return pd.DataFrame(rows)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    base_params = df[df.variant_name == BASELINE].params
    base = int(base_params.iloc[0]) if len(base_params) else None
    rows = []
    for name, g in df.groupby("variant_name", sort=False):
        tr, tr_sd, n = mean_std(_err(g, "train_error"))
        te, te_sd, _ = mean_std(_err(g, "test_error"))
        v = g.variant.iloc[0]
        rows.append({"variant_name": name, "group": v["group"], "description": v["description"],
                     "published": list(v.get("published") or []), "n_seeds": len(g),
                     "diverged": int((g.status != "ok").sum()), "train_error_mean": tr, "train_error_std": tr_sd,
                     "test_error_mean": te, "test_error_std": te_sd, "params": int(g.params.iloc[0]),
                     "extra_params": int(g.params.iloc[0]) - base if base is not None else None,
                     "flops": int(g.flops.iloc[0]), "images_per_second": float(g.images_per_second.mean())})
    return pd.DataFrame(rows)


def build(runs: Path, reports: Path, profile: str) -> Path:
    df = load_results(runs, "shortcut", profile)
    df["variant_name"] = [v["name"] for v in df.variant]
    order = [v for v in ["plain", BASELINE, "projection-B", *MODIFIED, "bn-after-add", "relu-before-add",
                         "relu-preact", "preact"] if v in set(df.variant_name)]
    order += sorted(set(df.variant_name) - set(order))
    df["variant_name"] = pd.Categorical(df.variant_name, order, ordered=True)
    df = df.sort_values(["variant_name", "seed"])
    df["variant_name"] = df.variant_name.astype(str)
    out = Path(reports) / "shortcut"
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(df)
    io.save_with(out / "results.csv", lambda p: agg.to_csv(p, index=False))
    why_not = published.comparability(profile, df.data_checksum.iloc[0], df.data_format.iloc[0])
    depth = int(df.depth.iloc[0])

    table = pd.DataFrame({
        "variant": agg.variant_name, "what": agg.description,
        "train err % (mean ± sd)": [pm(m, s, n) for m, s, n in zip(agg.train_error_mean, agg.train_error_std, agg.n_seeds)],
        "test err % (mean ± sd)": [pm(m, s, n) for m, s, n in zip(agg.test_error_mean, agg.test_error_std, agg.n_seeds)],
        "seeds": agg.n_seeds, "diverged": agg.diverged,
        "params": agg.params.map("{:,}".format),
        "shortcut params (vs identity)": agg.extra_params.map(lambda v: f"{v:+,}" if v is not None and not pd.isna(v) else "-"),
    })
    plot_df = df.assign(label=df.variant_name)
    plots.error_bars(plot_df, out / "errors.png", f"depth {depth}, profile {profile}: final error per variant")
    metrics = load_csvs(df.assign(label=df.variant_name), "metrics.csv")
    groups = {v["name"]: v["group"] for v in df.variant}
    if not metrics.empty:
        metrics["group"] = metrics.label.map(groups)
        # The identity baseline appears in every panel so each variant is read against it.
        base = metrics[metrics.label == BASELINE]
        metrics = pd.concat([metrics] + [base.assign(group=g) for g in set(groups.values()) - {groups.get(BASELINE)}])
        panels = [g for g in ("shortcut type", "shortcut modification", "activation placement") if g in set(metrics.group)]
        plots.training_curves(metrics, panels, out / "curves.png", by="label", panel_col="group",
                              title=f"depth {depth}, profile {profile}: train (dashed) and test (bold) error, mean over seeds")

    grads = load_csvs(df.assign(label=df.variant_name), "grad_norms.csv")
    flow_lines = ["_No gradient probes were recorded._"]
    if not grads.empty:
        r = flow.ratios(grads, ["label", "seed", "step"])
        first = r.groupby("label").step.transform("min")
        last = r.groupby("label").step.transform("max")
        g_rows = []
        for lbl in order:
            d = r[r.label == lbl]
            if d.empty:
                continue
            s0 = d[d.step == first[d.index]].ratio
            s1 = d[d.step == last[d.index]].ratio
            g_rows.append({"variant": lbl, "first/last ratio at first probe": f"{np.nanmedian(s0):.2g}",
                           "at last probe": f"{np.nanmedian(s1):.2g}",
                           "vanishing (< 1e-2)?": "yes" if np.nanmedian(s1) < flow.VANISHING_RATIO else "no"})
        flow_lines = ["Median over seeds of the first-conv / last-conv weight-gradient norm ratio, at the first and "
                      "the last probe of training (diverged runs: last finite probe).", "",
                      markdown.table(pd.DataFrame(g_rows))]
    resp = load_csvs(df.assign(label=df.variant_name), "responses.csv")
    resp_lines = flow.response_section(resp, ["plain", BASELINE, "preact", "scale-shortcut-0.5"], out, "responses.png")

    cpu_note = "" if profile == "paper" else (
        f"> **CPU-sized study (`{profile}` profile, depth {depth}), not a paper reproduction.** The paper's Tables 1 "
        "and 2 use ResNet-110 trained for 64k iterations; here every variant trains briefly at depth "
        f"{depth} on a subset, so compare variants with each other, not with the paper.\n\n")
    lines = [
        "# Is the shortcut effective, and which shortcut?", "",
        cpu_note + markdown.provenance(df, _profile_cfg(df), "shortcut"), "",
        "Plan, hypotheses and decision rule (fixed before running): [experiments/shortcut.md](../../experiments/shortcut.md).", "",
        "## Verdicts (computed by the decision rule)", "", *verdicts(df), "",
        "## Results per variant", "",
        f"All nets have depth {depth}. ± is the sample sd over seeds. A diverged run (non-finite loss) keeps its last "
        f"good metrics, or counts as {CHANCE:.0f}% (chance) if it had none. 'Shortcut params' are the parameters a "
        "variant adds over the parameter-free identity (option A).", "",
        markdown.table(table), "",
        "![final errors](errors.png)", "",
        "_How to read: final training (left bar) and test (right bar) error per variant, mean over seeds; "
        "lower is better; 'diverged' marks variants with a run that hit a non-finite loss._", "",
        "![training curves](curves.png)", "",
        "_How to read: training (dashed) and test (bold) error against iterations, one panel per family of "
        "variants, each with the identity baseline for reference._", "",
        "## Ours vs published", "",
        "Every row of ResNet Table 3 and Identity Mappings Tables 1 and 2 in `shared/reference/published.csv`, "
        "beside our run of the matching variant.", "",
        markdown.table(published_rows(df, agg, why_not)), "",
        "## Gradient flow per variant", "", *flow_lines, "",
        "### Layer responses", "", *resp_lines, "",
        f"Aggregated rows: [results.csv](results.csv). Per-run outputs are under `runs/shortcut/{profile}/`.",
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"
