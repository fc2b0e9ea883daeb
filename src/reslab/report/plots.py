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


def training_curves(metrics: pd.DataFrame, panels: list[str], path: Path, by: str = "depth",
                    title: str = "", panel_col: str = "family") -> Path:
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
        handles += [Line2D([], [], color="black", ls="--", lw=1.3, label="training error"),
                    Line2D([], [], color="black", ls="-", lw=2.4, label="test error")]
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


def layer_responses(resp: pd.DataFrame, labels: list[str], path: Path) -> Path:
    """ResNet Fig. 7: std of each 3x3 layer's response, by layer index (top) and sorted (bottom)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6))
    colors = _colors(labels)
    for lbl in labels:
        d = resp[resp.label == lbl]
        if d.empty:
            continue
        s = d.groupby("layer")["std"].mean()
        style = "--" if lbl.startswith("plain") else "-"
        top.plot(s.index + 1, s.values, style, color=colors[lbl], label=lbl)
        bottom.plot(np.arange(1, len(s) + 1), np.sort(s.values)[::-1], style, color=colors[lbl], label=lbl)
    top.set_xlabel("layer index (original order)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    values = resp[resp.label.isin(labels)]["std"]
    decades = values.max() / max(values[values > 0].min(), 1e-12) > 100 if len(values) else False
    for ax in (top, bottom):
        if decades:  # log only where the responses span decades
            ax.set_yscale("log")
        ax.set_ylabel("std" + (" (log scale)" if decades else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
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
    for ax in axes.flat[len(panels):]:
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
                    ax.fill_between(m.index, g[col].min().values, g[col].max().values, color=colors[lbl],
                                    alpha=0.10, lw=0)
            handles.append(Line2D([], [], color=colors[lbl], lw=2, label=lbl))
        for s in drops:
            ax.axvline(s, color="grey", ls=":", lw=1)
        handles += [Line2D([], [], color="grey", ls="--", lw=1.1, label="training error (style)"),
                    Line2D([], [], color="grey", ls="-", lw=2.0, label="test error (style)")]
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


def pareto(points: pd.DataFrame, panels: list[tuple[str, str, bool]], fronts: dict, colors: dict, markers: dict,
           path: Path, title: str = "") -> Path:
    """Test error against a cost, one panel per (column, axis label, log x): every net a point at its mean
    over seeds with a ±sd bar, one colour per family and one marker per budget; the nets on the panel's
    Pareto front (`fronts[column]`: no other net has both lower error and lower cost) ringed and joined."""
    from matplotlib.lines import Line2D

    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.8), squeeze=False, sharey=True)
    for ax, (col, xlabel, log) in zip(axes[0], panels):
        d = points[points[col].notna() & np.isfinite(points.test_error_mean.astype(float))]
        for _, r in d.iterrows():
            sd = r.test_error_std if np.isfinite(r.test_error_std) else None
            ax.errorbar(r[col], r.test_error_mean, yerr=sd, fmt=markers.get(r.budget, "o"), color=colors[r.family],
                        ms=7, capsize=3, lw=1)
            ax.annotate(r.label, (r[col], r.test_error_mean), fontsize=6, xytext=(4, 3), textcoords="offset points")
        front = d[d.label.isin(fronts.get(col, []))].sort_values(col)
        if len(front):
            ax.scatter(front[col], front.test_error_mean, s=180, facecolors="none", edgecolors="black", lw=1, zorder=4)
            ax.plot(front[col], front.test_error_mean, ":", color="black", lw=1)
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
        if d.empty:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", color="grey")
    axes[0][0].set_ylabel("final test error (%), mean ± sd over seeds")
    handles = [Line2D([], [], color=c, marker="o", ls="", label=f) for f, c in colors.items()
               if f in set(points.family)]
    handles += [Line2D([], [], color="black", marker=m, ls="", label=f"budget {b}") for b, m in markers.items()
                if b in set(points.budget)]
    handles.append(Line2D([], [], color="black", marker="o", ms=12, mfc="none", ls=":", label="Pareto front"))
    axes[0][-1].legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
