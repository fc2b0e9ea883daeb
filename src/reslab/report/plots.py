"""Figures (matplotlib, Agg). Each function writes one PNG atomically and returns its path; given no path
it returns the figure instead (the notebooks show it)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

# Reports are drawn headless; a notebook's kernel keeps its own backend, so that its other figures show.
if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reslab import io  # noqa: E402


def _save(fig, path: Path | None):
    if path is None:
        plt.close(fig)  # a notebook shows the returned figure once, not a second time as an open one
        return fig
    io.save_with(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _colors(keys):
    cmap = plt.get_cmap("viridis")
    keys = list(keys)
    return {k: cmap(i / max(1, len(keys) - 1) * 0.9) for i, k in enumerate(keys)}


def _lines_by_depth(ax, d: pd.DataFrame, x: str, y: str, band: bool = True) -> None:
    """One line per depth: the median of `y` over seeds at each `x`, shaded between min and max."""
    keys = sorted(d.depth.unique())
    colors = _colors(keys)
    for k in keys:
        g = d[d.depth == k].groupby(x)[y]
        med = g.median()
        ax.plot(med.index, med.values, color=colors[k], label=f"depth {k}")
        if band:
            ax.fill_between(med.index, g.min().values, g.max().values, color=colors[k], alpha=0.2, lw=0)


def training_curves(
    metrics: pd.DataFrame, panels: list[str], path: Path, by: str = "depth", title: str = "", panel_col: str = "family"
) -> Path:
    """ResNet Fig. 6 style: one panel per family, train error dashed, test error bold, mean over seeds."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        d = metrics[metrics[panel_col] == panel]
        keys = sorted(d[by].unique())
        colors = _colors(keys)
        for k in keys:
            m = d[d[by] == k].groupby("step")[["train_error", "test_error"]].mean().reset_index()
            lbl = f"{panel}-{k}" if by == "depth" else str(k)
            ax.plot(m.step, m.train_error, "--", color=colors[k], lw=1.2)
            if "test_error" in m and m.test_error.notna().any():
                ax.plot(m.step, m.test_error, "-", color=colors[k], lw=2.2, label=lbl)
        ax.set_title(panel)
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("error (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def learning_curves(curves: pd.DataFrame, panels: list[str], path: Path, drops=(), title: str = "") -> Path:
    """ResNet Fig. 6 from the curve probe: fixed-set training error dashed, test error bold, against
    iterations from step 0; mean over seeds with a min-max band; one colour per depth, one panel per family."""
    from matplotlib.lines import Line2D

    depths = sorted(curves.depth.unique())
    colors = _colors(depths)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.0), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        d = curves[curves.family == panel]
        for k in depths:
            g = d[d.depth == k].groupby("step")
            for col, style, lw in (("train_error", "--", 1.3), ("test_error", "-", 2.4)):
                m, lo, hi = g[col].mean(), g[col].min(), g[col].max()
                if m.empty:
                    continue
                ax.plot(m.index, m.values, style, color=colors[k], lw=lw)
                if d[d.depth == k].seed.nunique() > 1:
                    ax.fill_between(m.index, lo.values, hi.values, color=colors[k], alpha=0.12, lw=0)
        for s in drops:
            ax.axvline(s, color="grey", ls=":", lw=1)
        ax.set_title(panel)
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        handles = [Line2D([], [], color=colors[k], lw=2, label=f"depth {k}") for k in depths]
        handles += [
            Line2D([], [], color="black", ls="--", lw=1.3, label="training error"),
            Line2D([], [], color="black", ls="-", lw=2.4, label="test error"),
        ]
        ax.legend(handles=handles, fontsize=7, ncol=2)
    axes[0][0].set_ylabel("error (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def error_vs_depth(runs: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Final error against depth: every run a dot, the mean over seeds a line; train left, test right."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    styles = {"plain": ("tab:red", "o"), "resnet": ("tab:blue", "s")}
    for ax, col in zip(axes, ("train_error", "test_error")):
        for fam, d in runs.groupby("family"):
            color, marker = styles.get(fam, ("tab:gray", "^"))
            jitter = (d.seed.rank(method="dense") - 2) * 0.012
            ax.scatter(d.depth * (1 + jitter), d[col], color=color, marker=marker, alpha=0.55, s=22)
            m = d.groupby("depth")[col].mean()
            ax.plot(m.index, m.values, "-", color=color, marker=marker, lw=1.8, label=f"{fam} (mean; dots = seeds)")
        ax.axhline(90, color="grey", ls=":", lw=1, label="chance (90 %)")
        ax.set_xscale("log")
        ax.set_xticks(sorted(runs.depth.unique()), [str(x) for x in sorted(runs.depth.unique())])
        ax.minorticks_off()
        ax.set_xlabel("depth (log scale)")
        ax.set_title(col.replace("_", " ") + " (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("final error (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


# Fig. 7's linear axis ends at this many times the median response drawn, so that one net's outlying layers do not
# flatten every other line; layers above it are marked on the top edge (issue 25) and the report names them.
RESPONSE_AXIS_TOP = 3.0


def response_column(resp: pd.DataFrame) -> str:
    """The per-layer response drawn and read: the mean over channels without the near-constant ones (`std_masked`,
    reslab.probes.responses) where every row has it, else the median over channels (runs from before the masking)."""
    if {"std_masked", "masked"} <= set(resp.columns) and resp["masked"].notna().all():
        return "std_masked"
    return "std_median"


def response_bands(resp: pd.DataFrame, labels: list[str], column: str | None = None) -> dict[str, pd.DataFrame]:
    """Per net: its layers (index) x mean, min and max over seeds of `column` (response_column unless given)."""
    d = resp[resp.label.isin(labels)]
    column = column or response_column(d)
    out = {}
    for lbl in labels:
        g = d[d.label == lbl]
        if g.empty:
            continue
        if "seed" not in g:
            g = g.assign(seed=0)
        by = g.pivot_table(index="layer", columns="seed", values=column, aggfunc="first")
        out[lbl] = pd.DataFrame({"mean": by.mean(axis=1), "min": by.min(axis=1), "max": by.max(axis=1)})
    return out


def response_axis_top(bands: dict[str, pd.DataFrame]) -> float:
    """The top of Fig. 7's linear axis: RESPONSE_AXIS_TOP x the median over every net's layers of the mean over seeds,
    or the largest band edge if that is lower (then nothing is off the axis)."""
    means = np.concatenate([b["mean"].to_numpy(dtype=float) for b in bands.values()]) if bands else np.array([])
    highs = np.concatenate([b["max"].to_numpy(dtype=float) for b in bands.values()]) if bands else np.array([])
    means, highs = means[np.isfinite(means)], highs[np.isfinite(highs)]
    if not len(means):
        return 1.0
    return float(min(RESPONSE_AXIS_TOP * np.median(means), highs.max() * 1.05 if len(highs) else np.inf))


def layer_responses(resp: pd.DataFrame, labels: list[str], path: Path, column: str | None = None) -> Path:
    """ResNet Fig. 7: the std of each 3x3 layer's response, by layer index (top) and sorted (bottom); linear axis,
    mean over seeds with the min-max band, near-constant channels masked where the runs record them
    (`response_column`). Layers above the axis (`response_axis_top`) are marked on its top edge."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.4))
    d = resp[resp.label.isin(labels)]
    column = column or response_column(d)
    bands = response_bands(d, labels, column)
    ymax = response_axis_top(bands)
    colors = _colors(labels)
    for lbl, b in bands.items():
        style = "--" if lbl.startswith("plain") else "-"
        x = b.index.to_numpy() + 1
        order = np.argsort(-b["mean"].to_numpy(dtype=float), kind="stable")
        for ax, xs, rows in ((top, x, b), (bottom, np.arange(1, len(b) + 1), b.iloc[order])):
            ax.plot(xs, rows["mean"].to_numpy(), style, color=colors[lbl], label=lbl, lw=1.3)
            ax.fill_between(xs, rows["min"].to_numpy(), rows["max"].to_numpy(), color=colors[lbl], alpha=0.15, lw=0)
            off = rows["mean"].to_numpy() > ymax
            if off.any():
                ax.plot(xs[off], np.full(off.sum(), ymax), "^", color=colors[lbl], ms=4, clip_on=False)
    what = {"std_masked": "near-constant channels masked", "std_median": "median over channels"}.get(column, column)
    top.set_xlabel("layer index (original order)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylim(0, ymax)
        ax.set_ylabel(f"response std ({what})", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    top.set_title("mean over seeds, band min-max over seeds; ^ on the top edge: off the axis", fontsize=9)
    return _save(fig, path)


def critical_window(
    runs: pd.DataFrame,
    loss: pd.DataFrame,
    depths: list[int],
    path: Path | None,
    band: float,
    warmup: int = 0,
    parts: dict | None = None,
    loss_label: str = "loss",
) -> Path:
    """The critical window (reslab.report.window): one row per depth, the per-block GSC rate (left) and the loss (right)
    against the step, plain dashed and residual solid, median over seeds with the min-max band; x axis linear from 0 to
    1 and logarithmic after it, so step 0 sits at the left edge; warm-up shaded, the parting step a vertical line."""
    styles = {"plain": ("tab:red", "--"), "resnet": ("tab:blue", "-")}
    n = max(1, len(depths))
    fig, axes = plt.subplots(n, 2, figsize=(9.5, 2.3 * n), squeeze=False, sharex=True)
    finite = loss.loss[np.isfinite(loss.loss.astype(float))] if not loss.empty else pd.Series(dtype=float)
    log_loss = bool(len(finite)) and finite.min() > 0 and finite.max() / finite.min() > 10
    for row, depth in zip(axes, depths):
        for ax, frame, col in ((row[0], runs, "gsc_rate"), (row[1], loss, "loss")):
            for fam, (color, style) in styles.items():
                d = frame[(frame.family == fam) & (frame.depth == depth)]
                d = d[np.isfinite(d[col].astype(float))]
                if d.empty:
                    continue
                g = d.groupby("step")[col]
                med = g.median()
                ax.plot(med.index, med.values, style, color=color, marker=".", ms=4, lw=1.3, label=f"{fam}-{depth}")
                ax.fill_between(med.index, g.min().values, g.max().values, color=color, alpha=0.15, lw=0)
            if warmup:
                ax.axvspan(0, warmup, color="grey", alpha=0.12, lw=0)
            if parts and parts.get(depth) is not None:
                ax.axvline(parts[depth], color="black", ls=":", lw=1.2)
            ax.set_xscale("symlog", linthresh=1, linscale=0.4)
            ax.grid(alpha=0.3, which="major")
        row[0].axhline(band, color="grey", ls=":", lw=1)
        row[0].axhline(1 / band, color="grey", ls=":", lw=1)
        row[0].set_ylabel(f"depth {depth}", fontsize=9)
        if log_loss:
            row[1].set_yscale("log")
        row[0].legend(fontsize=7, loc="best")
    axes[0][0].set_title("per-block GSC rate", fontsize=9)
    axes[0][1].set_title(loss_label, fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("step (0, then log scale)")
    return _save(fig, path)


def grad_profiles(rows: pd.DataFrame, path: Path, title: str, column: str = "grad_norm") -> Path:
    """Per-layer gradient norm against layer index (log scale), one line per net, median over seeds,
    shaded between min and max over seeds."""
    panels = sorted(rows.panel.unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False, sharey=True)
    for ax, panel in zip(axes[0], panels):
        _lines_by_depth(ax, rows[rows.panel == panel], "layer", column)
        ax.set_yscale("log")
        ax.set_title(panel)
        ax.set_xlabel("layer index (input side = 0)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(column.replace("_", " "))
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def signal_profiles(rows: pd.DataFrame, path: Path, band: float) -> Path:
    """Backward-signal RMS by relative depth: one panel per (family, norm), one line per depth."""
    panels = sorted({(f, n) for f, n in zip(rows.family, rows.norm)})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.6), squeeze=False, sharey=True)
    for ax, (fam, norm) in zip(axes[0], panels):
        _lines_by_depth(ax, rows[(rows.family == fam) & (rows.norm == norm)], "rel_depth", "grad_rms")
        ax.set_yscale("log")
        ax.set_title(f"{fam}, norm={norm}", fontsize=9)
        ax.set_xlabel("relative depth (0 = input side)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("RMS of dL/dh (log)")
    fig.suptitle(f"backward signal at initialisation; reading band: a factor {band:g} between the ends", fontsize=10)
    return _save(fig, path)


def relative_updates(updates: pd.DataFrame, path: Path) -> Path:
    """Relative update size by relative layer position, one panel per family, one line per depth."""
    u = updates[updates.kind == "main"]
    fams = sorted(u.family.unique())
    fig, axes = plt.subplots(1, len(fams), figsize=(5.2 * len(fams), 3.8), squeeze=False, sharey=True)
    for ax, fam in zip(axes[0], fams):
        _lines_by_depth(ax, u[u.family == fam], "rel_layer", "rel_update", band=False)
        ax.set_yscale("log")
        ax.set_title(fam)
        ax.set_xlabel("relative layer position (0 = input side)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("|Δw| / |w| per step (log)")
    return _save(fig, path)


def step_states(states: pd.DataFrame, path: Path) -> Path:
    """Each layer's step in multiples of the weight-decay floor by relative layer position, one panel per family, one
    line per depth (median over seeds), the floor as a dashed line and a cross on every layer dead in some seed."""
    fams = sorted(states.family.unique())
    fig, axes = plt.subplots(1, len(fams), figsize=(5.2 * len(fams), 3.8), squeeze=False, sharey=True)
    for ax, fam in zip(axes[0], fams):
        d = states[states.family == fam]
        _lines_by_depth(ax, d, "rel_layer", "x_median", band=False)
        colors = _colors(sorted(d.depth.unique()))
        dead = d[d.dead].groupby(["depth", "rel_layer"]).x_median.median().reset_index()
        for depth, g in dead.groupby("depth"):
            ax.scatter(g.rel_layer, g.x_median, marker="x", s=14, color=colors[depth], zorder=3)
        ax.axhline(1.0, color="red", ls="--", lw=1, label="weight-decay floor")
        ax.set_yscale("log")
        ax.set_title(fam)
        ax.set_xlabel("relative layer position (0 = input side)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("step / weight-decay floor (log)")
    return _save(fig, path)


def ratio_vs_depth(summary: pd.DataFrame, path: Path, threshold: float, title: str) -> Path:
    """First/last-layer gradient-norm ratio against depth, one line per series, min-max bars."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for series, d in summary.groupby("series"):
        d = d.sort_values("depth")
        yerr = np.vstack([d.ratio_median - d.ratio_min, d.ratio_max - d.ratio_median])
        ax.errorbar(d.depth, d.ratio_median, yerr=yerr, marker="o", capsize=3, label=series)
    ax.axhline(threshold, color="red", ls=":", label=f"first plan's threshold {threshold:g} (superseded)")
    ax.set_yscale("log")
    ax.set_xlabel("depth")
    ax.set_ylabel("grad norm: first conv / last conv")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def error_bars(df: pd.DataFrame, path: Path, title: str) -> Path:
    """Final train/test error per variant, mean with min-max over seeds; diverged runs marked x."""
    labels = list(df.label.unique())
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(labels)), 4))
    x = np.arange(len(labels))
    for off, col, name in ((-0.18, "train_error", "train"), (0.18, "test_error", "test")):
        g = df.groupby("label", sort=False)[col]
        mean = g.mean().reindex(labels)
        ax.bar(x + off, mean.values, width=0.36, label=name, alpha=0.8)
    for i, lbl in enumerate(labels):
        if (df[df.label == lbl].status != "ok").any():
            ax.text(i, 2, "diverged", rotation=90, ha="center", va="bottom", fontsize=7, color="red")
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("final error (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def fixed_colors(names) -> dict:
    """One distinct hue per name, fixed by the name's position in `names` (pass the study's full list,
    so a variant keeps its colour in every panel and every figure). tab10's ten hues, then five more
    that none of them resembles (tab20's light shades would pair with their dark twins)."""
    palette = [plt.get_cmap("tab10")(i) for i in range(10)] + ["black", "#000080", "#b8860b", "#ff00ff", "#008080"]
    return {n: palette[i % len(palette)] for i, n in enumerate(list(names))}


def variant_curves(curves: pd.DataFrame, panels: dict, colors: dict, path: Path, drops=(), title: str = "") -> Path:
    """Curve-probe training (dashed) and test (solid) error against iterations, one panel per group of
    variants; mean over seeds with a min-max band; every curve in its panel's legend."""
    from matplotlib.lines import Line2D

    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.4 * ncols, 4.2 * nrows), sharey=True, squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (panel, labels) in zip(axes.flat, panels.items()):
        handles = []
        for lbl in labels:
            d = curves[curves.label == lbl]
            if d.empty:
                continue
            g = d.groupby("step")
            for col, style, lw in (("train_error", "--", 1.1), ("test_error", "-", 2.0)):
                m = g[col].mean()
                ax.plot(m.index, m.values, style, color=colors[lbl], lw=lw)
                if d.seed.nunique() > 1:
                    ax.fill_between(
                        m.index, g[col].min().values, g[col].max().values, color=colors[lbl], alpha=0.10, lw=0
                    )
            handles.append(Line2D([], [], color=colors[lbl], lw=2, label=lbl))
        for s in drops:
            ax.axvline(s, color="grey", ls=":", lw=1)
        handles += [
            Line2D([], [], color="grey", ls="--", lw=1.1, label="training error (style)"),
            Line2D([], [], color="grey", ls="-", lw=2.0, label="test error (style)"),
        ]
        ax.legend(handles=handles, fontsize=7, ncol=1, loc="upper right", framealpha=0.8)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("error (%), probe's fixed images")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def variant_errors(runs: pd.DataFrame, order: list, colors: dict, path: Path, title: str = "") -> Path:
    """Final training and test error per variant: every seed a dot, mean ± sd a bar; linear axis."""
    labels = [o for o in order if o in set(runs.label)]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.9 * len(labels)), 4.2), sharey=True)
    x = np.arange(len(labels))
    for ax, col, name in ((axes[0], "train_error", "training error"), (axes[1], "test_error", "test error")):
        for i, lbl in enumerate(labels):
            d = runs[runs.label == lbl]
            v = d[col].astype(float)
            ax.scatter(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, s=12, color=colors[lbl], zorder=3)
            if len(v.dropna()) > 1:
                ax.errorbar(i, v.mean(), yerr=v.std(ddof=1), fmt="_", ms=16, color="black", lw=1.2, zorder=4)
            if (d.status != "ok").any():
                ax.text(i, np.nanmax(v) if v.notna().any() else 50, " diverged", rotation=90, fontsize=7, color="red")
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("final error (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def pareto(
    points: pd.DataFrame,
    panels: list[tuple[str, str, bool]],
    fronts: dict,
    colors: dict,
    markers: dict,
    path: Path,
    title: str = "",
) -> Path:
    """Test error against a cost, one panel per (column, axis label, log x): every net a point at its mean
    over seeds with a ±sd bar, one colour per family and one marker per budget; the nets on the panel's
    Pareto front (`fronts[column]`: no other net has both lower error and lower cost) ringed and joined."""
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.8), squeeze=False, sharey=True)
    for ax, (col, xlabel, log) in zip(axes[0], panels):
        d = points[points[col].notna() & np.isfinite(points.test_error_mean.astype(float))]
        for _, r in d.iterrows():
            sd = r.test_error_std if np.isfinite(r.test_error_std) else None
            ax.errorbar(
                r[col],
                r.test_error_mean,
                yerr=sd,
                fmt=markers.get(r.budget, "o"),
                color=colors[r.family],
                ms=7,
                capsize=3,
                lw=1,
            )
            ax.annotate(r.label, (r[col], r.test_error_mean), fontsize=6, xytext=(4, 3), textcoords="offset points")
        front = d[d.label.isin(fronts.get(col, []))].sort_values(col)
        if len(front):
            ax.scatter(front[col], front.test_error_mean, s=180, facecolors="none", edgecolors="black", lw=1, zorder=4)
            ax.plot(front[col], front.test_error_mean, ":", color="black", lw=1)
        if log:
            ax.set_xscale("log")
            readable_log_ticks(ax.xaxis)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
        if d.empty:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color="grey")
    axes[0][0].set_ylabel("final test error (%), mean ± sd over seeds")
    handles = [
        Line2D([], [], color=c, marker="o", ls="", label=f) for f, c in colors.items() if f in set(points.family)
    ]
    handles += [
        Line2D([], [], color="black", marker=m, ls="", label=f"budget {b}")
        for b, m in markers.items()
        if b in set(points.budget)
    ]
    handles.append(Line2D([], [], color="black", marker="o", ms=12, mfc="none", ls=":", label="Pareto front"))
    axes[0][-1].legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _compact(v: float) -> str:
    """A tick value in few characters: 300k, 1.5M, 50, 0.2."""
    for unit, name in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= unit:
            return f"{v / unit:g}{name}"
    return f"{v:g}"


LOG_TICK_SUBS = [(1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)]


def readable_log_ticks(axis, max_ticks: int = 6) -> list[float]:
    """Ticks of a log axis that do not overlap: at most `max_ticks` round values (1, 2, 5 x 10^k, or finer
    where the axis spans less than a decade), labelled in plain compact numbers (300k, 50), no minor labels.
    matplotlib labels the minor ticks of a log axis that spans under a decade or so in scientific notation,
    and those labels run into each other. Call it after the data are drawn (it reads the limits)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax = axis.axes  # its get_xlim/get_ylim apply a pending autoscale first (the axis's own interval may be stale)
    lo, hi = sorted(ax.get_xlim() if axis is ax.xaxis else ax.get_ylim())
    if not (np.isfinite(lo) and np.isfinite(hi) and lo > 0 and hi > lo):
        return []
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    ticks: list[float] = []
    for subs in LOG_TICK_SUBS:  # the finest set that still fits max_ticks; at least the coarsest
        cand = [s * 10.0**k for k in decades for s in subs if lo <= s * 10.0**k <= hi]
        if len(cand) > max_ticks and ticks:
            break
        ticks = cand
        if len(cand) >= 3:
            break
    if len(ticks) > max_ticks:  # many decades: every k-th power of ten
        ticks = ticks[:: -(-len(ticks) // max_ticks)]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
    axis.set_minor_formatter(NullFormatter())
    return ticks


def paired_caption(practical: float, who: str) -> str:
    """The caption of a `paired_differences` figure."""
    return (
        "_How to read: every contrast as it is tested: each dot is one seed's difference 'worse − better' (the two "
        "nets trained on that seed), the diamond their mean and the bar the 95% CI the verdict uses; the shaded band "
        f"is the ±{practical:g} pp practical threshold (a CI inside it: no practical difference); colour = verdict. "
        f"Positive: the net {who} expects to be worse is worse._"
    )


VERDICT_COLORS = {
    "supported": "tab:red",
    "contradicted": "tab:blue",
    "no practical difference": "tab:green",
    "inconclusive": "tab:gray",
}


def paired_differences(
    families: dict, path: Path | None, practical: float, title: str = "", names: dict | None = None
) -> Path:
    """Every paired contrast as it is tested: one row per contrast (`reslab.report.paired.Paired`), its
    per-seed differences 'worse − better' as dots, their mean with the contrast's own 95% CI as a bar, the
    ±`practical` band shaded; one panel per family of contrasts, coloured by the contrast's verdict.
    `names` maps a contrast's name to its row label (default: 'name: worse − better')."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fams = {k: v for k, v in families.items() if v}
    if not fams:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.text(0.5, 0.5, "no paired contrasts", transform=ax.transAxes, ha="center", color="grey")
        ax.set_axis_off()
        return _save(fig, path)
    rows = [len(v) for v in fams.values()]
    height = 1.2 + 0.42 * sum(rows) + 0.7 * len(fams)
    fig, axes = plt.subplots(
        len(fams), 1, figsize=(8.5, height), squeeze=False, gridspec_kw={"height_ratios": [r + 1.2 for r in rows]}
    )
    # Margins in inches: room for each panel's title above it and the x labels below the last one.
    top, bottom = 1 - 0.3 / height, 0.7 / height
    fig.subplots_adjust(top=top, bottom=bottom, hspace=0.65 / ((top - bottom) * height / len(fams)))
    for ax, (family, contrasts) in zip(axes[:, 0], fams.items()):
        ax.axvspan(-practical, practical, color="tab:green", alpha=0.12, lw=0)
        ax.axvline(0, color="black", lw=0.8)
        for i, c in enumerate(contrasts):
            y = len(contrasts) - 1 - i  # the first contrast on top
            color = VERDICT_COLORS.get(c.verdict, "black")
            d = np.asarray(c.diffs, dtype=float)
            jitter = np.linspace(-0.18, 0.18, len(d)) if len(d) > 1 else np.zeros(len(d))
            ax.scatter(d, y + jitter, s=14, color=color, alpha=0.55, zorder=3, lw=0)
            if np.isfinite(c.ci[0]) and np.isfinite(c.ci[1]):
                ax.plot([c.ci[0], c.ci[1]], [y, y], color=color, lw=2.2, solid_capstyle="butt", zorder=4)
                ax.plot([c.ci[0], c.ci[0]], [y - 0.15, y + 0.15], color=color, lw=1.5, zorder=4)
                ax.plot([c.ci[1], c.ci[1]], [y - 0.15, y + 0.15], color=color, lw=1.5, zorder=4)
            if np.isfinite(c.mean):
                ax.plot(c.mean, y, marker="D", ms=7, color=color, mec="black", mew=0.6, zorder=5)
        labels = [
            (names or {}).get(c.name, f"{c.name}: {c.worse} − {c.better}") + f" ({c.metric.replace('_', ' ')}, n={c.n})"
            for c in contrasts
        ]
        ax.set_yticks(range(len(contrasts)), labels[::-1], fontsize=7)
        ax.set_ylim(-0.7, len(contrasts) - 0.3)
        ax.set_title(f"{family} family", fontsize=9, loc="left")
        ax.grid(alpha=0.3, axis="x")
        ax.tick_params(axis="x", labelsize=8)
    axes[-1, 0].set_xlabel("paired difference worse − better (pp): > 0 where the hypothesis predicts it")
    present = {c.verdict for v in fams.values() for c in v}
    handles = [
        Line2D([], [], color="grey", marker="o", ls="", alpha=0.55, label="one seed's difference"),
        Line2D([], [], color="grey", marker="D", mec="black", lw=2.2, label="mean, 95% CI of the paired t-test"),
        Patch(color="tab:green", alpha=0.12, label=f"±{practical:g} pp: no practical difference"),
    ]
    handles += [
        Line2D([], [], color=col, marker="s", ls="", label=f"verdict: {v}")
        for v, col in VERDICT_COLORS.items()
        if v in present
    ]
    axes[0, 0].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9)
    if title:  # above the top panel's title whatever the height (the saved bounding box is tight)
        fig.suptitle(title, fontsize=10, y=1.0 + 0.15 / height)
    return _save(fig, path)
