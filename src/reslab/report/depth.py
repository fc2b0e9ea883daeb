"""reports/depth/: is deeper better? Plain vs residual across depth, from runs/depth/<profile>/."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from reslab import io
from reslab.report import flow, markdown, plots, published
from reslab.report.results import load_csvs, load_results
from reslab.report.stats import depth_trend, mean_std, pm

FAMILIES = ("plain", "resnet")


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (family, depth), g in results.groupby(["family", "depth"]):
        tr, tr_sd, n = mean_std(g.train_error)
        te, te_sd, _ = mean_std(g.test_error)
        rows.append({"family": family, "depth": int(depth), "label": f"{family}-{depth}", "n_seeds": len(g),
                     "n_ok": int((g.status == "ok").sum()), "train_error_mean": tr, "train_error_std": tr_sd,
                     "test_error_mean": te, "test_error_std": te_sd, "params": int(g.params.iloc[0]),
                     "flops": int(g.flops.iloc[0]), "wall_seconds_mean": float(g.wall_seconds.mean()),
                     "images_per_second_mean": float(g.images_per_second.mean())})
    return pd.DataFrame(rows).sort_values(["family", "depth"])


def published_columns(agg: pd.DataFrame, pub: pd.DataFrame, why_not: str | None) -> pd.DataFrame:
    vals, deltas, srcs = [], [], []
    for _, r in agg.iterrows():
        row = published.lookup(pub, model="resnet", depth=r.depth, variant="option A", source="He2016-ResNet") \
            if r.family == "resnet" else None
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


def verdict_lines(results: pd.DataFrame) -> tuple[list[str], dict]:
    trends = {f: depth_trend(results, f) for f in FAMILIES}
    lines = []
    plain, res = trends.get("plain"), trends.get("resnet")
    answer = {"plain": plain.verdict if plain else "no data", "resnet": res.verdict if res else "no data"}
    words = {"rises": "degrade (training error rises with depth)", "falls": "improve (training error falls with depth)",
             "inconclusive": "inconclusive"}
    for fam, t in trends.items():
        if t is None:
            lines.append(f"- **{fam}**: fewer than two depths finished; no verdict.")
            continue
        lines.append(f"- **{fam}: deeper nets {words[t.verdict]}.** {t.describe()}.")
    if answer["plain"] == "rises" and answer["resnet"] == "falls":
        head = "**Deeper is better only with shortcuts:** deeper plain nets degrade while deeper residual nets improve."
    elif answer["plain"] == "rises" and answer["resnet"] != "rises":
        head = ("**Deeper plain nets degrade; residual nets do not** (their depth trend is "
                f"{answer['resnet']}), so the shortcut removes the degradation in this profile.")
    elif answer["plain"] == "rises":
        head = ("**Both families' training error rises with depth in this profile**: within this budget the deeper "
                "residual nets train slower too, so the shortcut does not remove the depth penalty here and the "
                "benefit of depth is not shown (see the per-depth gap plain − residual in the table).")
    else:
        head = (f"**Question 1 is inconclusive by the rule fixed in advance** (plain trend: {answer['plain']}, "
                f"residual trend: {answer['resnet']}); more seeds (`SEEDS=0,1,2`) give the test more power.")
    if plain and res and all(np.isfinite([plain.slope_se_per_10, res.slope_se_per_10])):
        diff = plain.slope_per_10 - res.slope_per_10
        se = math.hypot(plain.slope_se_per_10, res.slope_se_per_10)
        z = diff / se if se > 0 else math.inf
        p = float(stats.norm.sf(z))
        lines.append(
            f"- *Post hoc (added after the first quick run showed both families rising; not part of the rule fixed "
            f"in advance):* the plain slope exceeds the residual slope by {diff:+.2f} ± {se:.2f} pp per 10 layers "
            f"(one-sided p = {p:.3g}), i.e. the shortcut "
            + ("reduces" if diff > 0 and p < 0.05 else "does not clearly reduce") + " the depth penalty in this profile.")
    for fam, t in trends.items():
        if t is None:
            continue
        m = results[results.family == fam].groupby("depth").train_error.mean()
        if len(m) > 2:
            tau = stats.kendalltau(m.index, m.values)
            p_up = tau.pvalue / 2 if tau.statistic > 0 else 1 - tau.pvalue / 2
            lines.append(
                f"- *Post hoc (added because training error saturates near chance, 90%, which a straight line fits "
                f"poorly):* Kendall's tau between depth and {fam} mean training error = {tau.statistic:+.2f} over "
                f"{len(m)} depths (one-sided p for a rise = {p_up:.3g}).")
    return [head, ""] + lines, answer


def build(runs: Path, reports: Path, profile: str) -> Path:
    results = load_results(runs, "depth", profile)
    out = Path(reports) / "depth"
    out.mkdir(parents=True, exist_ok=True)
    cfg = _profile_cfg(results)
    agg = aggregate(results)
    metrics = load_csvs(results, "metrics.csv")
    first = metrics[metrics.epoch == 1].groupby(["family", "depth"]).train_loss.mean()
    agg["first_epoch_loss"] = [first.get((f, d), math.nan) for f, d in zip(agg.family, agg.depth)]
    why_not = published.comparability(profile, results.data_checksum.iloc[0], results.data_format.iloc[0])
    agg = published_columns(agg, published.load(), why_not)
    io.save_with(out / "results.csv", lambda p: agg.to_csv(p, index=False))

    plots.training_curves(metrics, [f for f in FAMILIES if f in set(metrics.family)], out / "curves.png",
                          title=f"profile {profile}: train (dashed) and test (bold) error, mean over seeds")
    verdict, answer = verdict_lines(results)

    table = pd.DataFrame({
        "net": agg.label, "depth": agg.depth,
        "train err % (mean ± sd)": [pm(m, s, n) for m, s, n in zip(agg.train_error_mean, agg.train_error_std, agg.n_seeds)],
        "test err % (mean ± sd)": [pm(m, s, n) for m, s, n in zip(agg.test_error_mean, agg.test_error_std, agg.n_seeds)],
        "seeds": agg.n_seeds, "params": agg.params.map("{:,}".format), "FLOPs (fwd, 1 img)": agg.flops.map("{:,}".format),
        "plain − this, train err (pp)": [_gap(agg, r) for _, r in agg.iterrows()],
        "published test err %": agg.published_test_error, "Δ test (ours − pub.)": agg.delta, "source": agg.published_source,
        "epoch-1 train loss": agg.first_epoch_loss.map("{:.2f}".format),
        "img/s": agg.images_per_second_mean.map("{:.0f}".format),
    })

    grads = load_csvs(results, "grad_norms.csv")
    resp = load_csvs(results, "responses.csv")
    init_lines, init_verdicts, init_summary = flow.init_section(Path(runs) / "gradflow" / "init.csv", out)
    train_lines, train_summary = flow.training_section(grads, results, out, "gradflow")
    present = sorted(results.depth.unique())
    # Fig. 7 shows depths 20, 56 and 110; a study without them shows its shallowest and deepest.
    fig7 = [d for d in (20, 56, 110) if d in present] or [present[0], present[-1]]
    resp_labels = [f"{f}-{d}" for f in FAMILIES for d in fig7]
    resp_lines = flow.response_section(resp, resp_labels, out, "responses.png")

    cpu_note = "" if profile == "paper" else (
        f"> **CPU-sized study (`{profile}` profile), not a paper reproduction.** It trains briefly on a subset, so the "
        "errors are far above the paper's; what it tests is whether the *ordering* by depth (degradation) appears.\n\n")
    lines = [
        "# Is deeper better? Plain vs residual nets across depth", "",
        cpu_note + markdown.provenance(results, cfg, "depth"), "",
        "Plan, controls and decision rule (fixed before running): [experiments/depth.md](../../experiments/depth.md).", "",
        "## Verdict (computed by the decision rule)", "", *verdict, "",
        "## Results", "",
        "Train error is the running error over the last epoch (augmented images, train mode), as in the paper's "
        "Figure 6; test error is measured on the held-out images after training. ± is the sample sd over seeds "
        "(absent with one seed). FLOPs: `torch.utils.flop_counter`, multiply-add = 2. "
        "Epoch-1 train loss well above ln 10 = 2.30 (chance) marks an early blow-up of the loss.", "",
        markdown.table(table), "",
        f"Published numbers: {why_not + ', so no delta is computed' if why_not else 'like-for-like (paper profile, official data)'}.", "",
        "![training curves](curves.png)", "",
        "_How to read (as ResNet Fig. 6): dashed = training error, bold = test error, against iterations; plain nets "
        "left, residual right. Degradation shows as deeper plain nets sitting *above* shallower ones on the dashed lines._", "",
        "## Gradient flow: do deep plain nets fail because gradients vanish?", "",
        f"Rule (experiments/depth.md): the early-layer gradient is *vanishing* when the first-conv / last-conv gradient-norm "
        f"ratio is below {flow.VANISHING_RATIO:g}.", "",
        "### At initialisation", "", *init_lines, "",
        "### During training", "", *train_lines,
        *(_train_ratio_lines(train_summary)), "",
        "### Layer responses of the trained nets (ResNet Fig. 7)", "", *resp_lines, "",
        "### What the gradient measurements support", "", _explanation(results, init_summary, train_summary), "",
        "Aggregated rows: [results.csv](results.csv). Per-run outputs (config, environment, per-epoch metrics, "
        "gradient probes, responses) are under `runs/depth/" + profile + "/`.",
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"


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


def _explanation(results: pd.DataFrame, init_rows: pd.DataFrame, train_summary: pd.DataFrame) -> str:
    """The rule of experiments/depth.md, applied depth by depth: a plain-BN net counts as 'vanishing' if
    its first/last ratio is below the threshold at init or at the end of training. Degradation at a depth
    with no vanishing cannot be explained by vanishing gradients."""
    plain = results[results.family == "plain"].groupby("depth").train_error.mean()
    if plain.empty or (init_rows.empty and train_summary.empty):
        return "_Not enough gradient measurements for a statement yet._"
    base_depth = plain.index.min()
    degraded = [int(d) for d, e in plain.items() if d != base_depth and e - plain[base_depth] > 1.0]
    vanish = {}
    for d in plain.index:
        at_init = init_rows[(init_rows.series == "plain bn") & (init_rows.depth == d)] if not init_rows.empty else init_rows
        at_end = train_summary[(train_summary.series == "plain end") & (train_summary.depth == d)] \
            if not train_summary.empty else train_summary
        vanish[int(d)] = {"init": bool((at_init.ratio_median < flow.VANISHING_RATIO).any()) if len(at_init) else None,
                          "end": bool((at_end.ratio_median < flow.VANISHING_RATIO).any()) if len(at_end) else None,
                          "init_ratio": float(at_init.ratio_median.iloc[0]) if len(at_init) else math.nan,
                          "end_ratio": float(at_end.ratio_median.iloc[0]) if len(at_end) else math.nan}
    parts = []
    if degraded:
        parts.append(f"Plain nets end with > 1 pp more training error than plain-{int(base_depth)} at depth "
                     + ", ".join(map(str, degraded)) + ".")
    v = [d for d in degraded if vanish[d]["init"] or vanish[d]["end"]]
    nv = [d for d in degraded if vanish[d]["init"] is False and vanish[d]["end"] is False]
    for d in sorted(vanish):
        r = vanish[d]
        parts.append(f"plain-{d} (BN): ratio {r['init_ratio']:.2g} at init, {r['end_ratio']:.2g} at the end of training.")
    if nv:
        parts.append(f"At depth {', '.join(map(str, nv))} the plain nets degrade **without** a vanishing gradient, at init "
                     "or at the end of training: there the data support the **optimisation-difficulty** explanation "
                     "(He et al.), not the vanishing-gradient one.")
    if v:
        parts.append(f"At depth {', '.join(map(str, v))} the ratio does fall below {flow.VANISHING_RATIO:g} "
                     "(at the end of training only if not at init), so vanishing gradients are **consistent** with the "
                     "degradation there; measured at the end, they may be a consequence of the failed training "
                     "rather than its cause.")
    if not degraded:
        parts.append("No plain net degraded by more than 1 pp, so there is nothing for either explanation to explain.")
    if init_rows is not None and not init_rows.empty:
        big = init_rows[(init_rows.series == "plain bn")]
        if len(big) and big.ratio_median.max() > 1:
            top = big.sort_values("ratio_median").iloc[-1]
            parts.append(f"With BN at init the ratio is above 1 and grows with depth (up to {top.ratio_median:.2g} at "
                         f"depth {int(top.depth)}): the input-side layers get *larger* gradients, the opposite of vanishing.")
        none = init_rows[init_rows.series == "plain none"]
        if len(none):
            word = "below" if (none.ratio_median < flow.VANISHING_RATIO).any() else "above"
            parts.append(f"Without BatchNorm (`norm=none`) the plain nets' ratio at init stays {word} the threshold "
                         f"(smallest median {none.ratio_median.min():.2g}).")
    return " ".join(parts)


def _profile_cfg(results: pd.DataFrame) -> dict | None:
    import yaml

    f = Path(results.run_dir.iloc[0]) / "config.yaml"
    return yaml.safe_load(f.read_text()).get("profile") if f.is_file() else None
