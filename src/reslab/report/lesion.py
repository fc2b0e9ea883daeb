"""reports/lesion/ from the lesion files that `python -m reslab.analysis.lesion_run` wrote beside a study's runs
(experiments/lesion.md; Veit, Wilber & Belongie 2016): does deleting blocks barely hurt a ResNet and break a plain net?

`reslab-report lesion [name=budget] [profile=budget] [steps=3200]` reads the runs of one budget (a ladder's rung) that
have the files. Compute, then the figures, then one function per section. The rules L1-L3 are the plan's."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from reslab import io
from reslab.report import markdown, paired, skeleton
from reslab.report.results import load_results

OPTIONS = {"steps": "3200"}
NEAR_IDENTITY = 0.1  # L6: a block is near an identity if its branch's median ||F(x)|| / ||h(x)|| is below this
COLLAPSE_PCT = 80.0  # L2: a plain net "collapses" if its median error after one deletion is at least this (chance 90)
FILES = ("lesion_single.csv", "lesion_random.csv")


# Compute.


def load(runs: Path, study: str, profile: str, steps: int) -> tuple[pd.DataFrame, ...]:
    """(results, single deletions, random deletions, path gradients, branch ratios) of the runs of `steps` with
    lesion files (the study's runs as reslab.report.results reads them, a ladder's rungs allowed)."""
    from reslab.report.budget import VARY

    every = load_results(runs, study, profile, vary=VARY)
    results = every[
        (every.steps_planned.astype(int) == steps)
        & every.run_dir.map(lambda d: all((Path(d) / f).is_file() for f in FILES))
    ].reset_index(drop=True)
    if results.empty:
        raise FileNotFoundError(
            f"no run of {steps} steps under {runs}/{study}/{profile}/ has lesion files: run "
            "`python -m reslab.analysis.lesion_run <run dirs>` first"
        )
    results["net"] = results.family + "-" + results.depth.astype(int).astype(str)
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in (*FILES, "lesion_paths.csv", "branch_ratios.csv")}
    for r in results.itertuples():
        tag = {"net": r.net, "family": r.family, "depth": int(r.depth), "seed": int(r.seed)}
        for name in frames:
            if (Path(r.run_dir) / name).is_file():
                frames[name].append(pd.read_csv(Path(r.run_dir) / name).assign(**tag))
    cat = lambda fs: pd.concat(fs, ignore_index=True) if fs else pd.DataFrame()  # noqa: E731
    return (results, *(cat(fs) for fs in frames.values()))


def medians(single: pd.DataFrame) -> pd.DataFrame:
    """Per run: the median over its non-downsampling blocks of the error after deleting one, and of the increase."""
    s = single[~single.downsampling].assign(increase=lambda d: d.test_error - d.intact_error)
    return s.groupby(["net", "family", "depth", "seed"], as_index=False).agg(
        median_error=("test_error", "median"),
        median_increase=("increase", "median"),
        intact_error=("intact_error", "first"),
    )


def t_interval(values, confidence: float = 0.95) -> tuple[float, float, float, int]:
    v = np.asarray(list(values), float)
    n = len(v)
    if n < 2:
        return (float(v.mean()) if n else math.nan), math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * v.std(ddof=1) / math.sqrt(n)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half), n


def below(mean_lo_hi_n, threshold: float) -> str:
    """'supported' if the whole interval is below the threshold, 'contradicted' if above, else 'inconclusive'."""
    _, lo, hi, n = mean_lo_hi_n
    if n < 2 or not np.isfinite(lo):
        return "inconclusive"
    return "supported" if hi < threshold else "contradicted" if lo > threshold else "inconclusive"


def deepest(med: pd.DataFrame, family: str) -> str | None:
    d = med[med.family == family]
    return f"{family}-{int(d.depth.max())}" if not d.empty else None


def near_identity_shares(ratios: pd.DataFrame) -> pd.DataFrame:
    """Per run: the share (%) of its non-downsampling blocks whose branch is near zero against its shortcut."""
    r = ratios[~ratios.downsampling]
    return r.groupby(["net", "depth", "seed"], as_index=False).agg(
        near_identity_pct=("ratio_median", lambda v: 100.0 * float((v < NEAR_IDENTITY).mean())),
        blocks=("ratio_median", "size"),
    )


# Figures.


def ratio_figure(ratios: pd.DataFrame, path: Path) -> Path:
    """||F(x)|| / ||h(x)|| per block against relative depth, one line per net (mean over seeds, band min-max)."""
    from reslab.report import plots

    plt = plots.plt
    fig, ax = plt.subplots(figsize=(7, 4))
    nets = sorted(ratios.net.unique(), key=lambda n: int(n.split("-")[-1]))
    colors = plots._colors(nets)
    for net in nets:
        g = ratios[ratios.net == net].groupby("relative_depth").ratio_median.agg(["mean", "min", "max"])
        ax.plot(g.index, g["mean"], marker="o", ms=3, color=colors[net], label=net)
        ax.fill_between(g.index, g["min"], g["max"], color=colors[net], alpha=0.15)
    ax.axhline(NEAR_IDENTITY, color="k", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("relative depth of the block")
    ax.set_ylabel("median ||F(x)|| / ||h(x)|| over test images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(
        f"Residual branch against the identity path (dotted: {NEAR_IDENTITY:g}, 'near an identity')", fontsize=10
    )
    return plots._save(fig, path)


def figures(single: pd.DataFrame, rand: pd.DataFrame, paths: pd.DataFrame, out: Path) -> list[str]:
    from reslab.report import plots

    plt = plots.plt
    nets = sorted(single.net.unique(), key=lambda n: (n.startswith("plain"), int(n.split("-")[-1])))
    colors = plots._colors(nets)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for net in nets:
        s = (
            single[single.net == net]
            .groupby("block")
            .agg(
                err=("test_error", "mean"),
                lo=("test_error", "min"),
                hi=("test_error", "max"),
                ds=("downsampling", "first"),
            )
        )
        style = "--" if net.startswith("plain") else "-"
        axes[0].plot(s.index, s.err, style, marker="o", ms=3, color=colors[net], label=net)
        axes[0].fill_between(s.index, s.lo, s.hi, color=colors[net], alpha=0.15)
        axes[0].plot(s.index[s.ds], s.err[s.ds], "kx", ms=7)
        r = rand[rand.net == net].groupby("k").test_error.agg(["mean", "min", "max"])
        axes[1].plot(r.index, r["mean"], style, marker="o", ms=3, color=colors[net], label=net)
        axes[1].fill_between(r.index, r["min"], r["max"], color=colors[net], alpha=0.15)
    for ax, x in zip(axes, ("block deleted (forward order; x: downsampling)", "blocks deleted at random (k)")):
        ax.axhline(90.0, color="k", ls=":", lw=1)
        ax.set_xlabel(x)
        ax.set_ylabel("test error (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "Deleting blocks: mean over seeds, band min-max (over seeds; right: over seeds and draws); dotted: chance",
        fontsize=10,
    )
    names = [plots._save(fig, out / "lesion.png").name]
    if not paths.empty:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.0))
        for net in sorted(paths.net.unique(), key=lambda n: int(n.split("-")[-1])):
            p = (
                paths[paths.net == net]
                .groupby("length")
                .agg(paths=("paths", "first"), share=("share", "mean"), grad=("grad_norm", "mean"))
            )
            n = int(p.index.max())
            axes[0].plot(p.index / n, p.paths / p.paths.sum(), color=colors.get(net), label=f"{net}: paths")
            axes[0].plot(p.index / n, p.share, "--", color=colors.get(net), label=f"{net}: gradient")
            axes[1].semilogy(p.index, p.grad, marker="o", ms=3, color=colors.get(net), label=net)
        axes[0].set_xlabel("path length / blocks")
        axes[0].set_ylabel("share of paths / of total gradient")
        axes[1].set_xlabel("path length (residual branches on the path)")
        axes[1].set_ylabel("gradient norm at the first block's input")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle("Effective paths (Veit et al. 2016, Fig. 6): mean over seeds", fontsize=10)
        names.append(plots._save(fig, out / "paths.png").name)
    return names


# Sections.


def l1(med: pd.DataFrame) -> tuple[str, tuple, str] | None:
    """L1: (net, mean/CI/n of the deepest ResNet's median increase over seeds, verdict)."""
    res = deepest(med, "resnet")
    if not res:
        return None
    r = t_interval(med[med.net == res].median_increase)
    return res, r, below(r, paired.PRACTICAL_PP)


def l2(med: pd.DataFrame) -> tuple[str, tuple, str] | None:
    """L2: (net, mean/CI/n of the deepest plain net's median error after one deletion, verdict)."""
    pln = deepest(med, "plain")
    if not pln:
        return None
    p = t_interval(med[med.net == pln].median_error)
    return (
        pln,
        p,
        {"supported": "contradicted", "contradicted": "supported"}.get(below(p, COLLAPSE_PCT), "inconclusive"),
    )


def l3(med: pd.DataFrame) -> paired.Paired | None:
    """L3: the paired contrast of the median increase, deepest plain net - deepest ResNet (a family of one)."""
    res, pln = deepest(med, "resnet"), deepest(med, "plain")
    if not (res and pln):
        return None
    a = dict(zip(med[med.net == pln].seed, med[med.net == pln].median_increase))
    b = dict(zip(med[med.net == res].seed, med[med.net == res].median_increase))
    c = paired.paired("L3", "median_increase", pln, res, a, b)
    skeleton.decide({"L3": [c]})
    return c


def l6(ratios: pd.DataFrame) -> paired.Paired | None:
    """L6: the paired contrast of the near-identity share, deepest ResNet - shallowest (a family of one)."""
    if ratios.empty:
        return None
    sh = near_identity_shares(ratios)
    nets = sorted(sh.net.unique(), key=lambda n: int(n.split("-")[-1]))
    if len(nets) < 2:
        return None
    deep, shallow = nets[-1], nets[0]
    a = dict(zip(sh[sh.net == deep].seed, sh[sh.net == deep].near_identity_pct))
    b = dict(zip(sh[sh.net == shallow].seed, sh[sh.net == shallow].near_identity_pct))
    c = paired.paired("L6", "near_identity_pct", deep, shallow, a, b)
    skeleton.decide({"L6": [c]})
    return c


def verdicts(med: pd.DataFrame, ratios: pd.DataFrame) -> dict[str, str]:
    """The rules' verdict words, for a summary elsewhere (reslab.analysis.mechanism)."""
    out = {}
    for name, r in (("L1", l1(med)), ("L2", l2(med))):
        if r:
            out[name] = r[2]
    for name, c in (("L3", l3(med)), ("L6", l6(ratios))):
        if c:
            out[name] = c.verdict
    return out


def verdict_section(med: pd.DataFrame) -> list[str]:
    lines = []
    if r1 := l1(med):
        res, r, v = r1
        lines.append(
            f"- **L1** ({res}: a single deletion barely hurts): median increase over its non-downsampling "
            f"blocks, mean over {r[3]} seeds {r[0]:+.2f} pp, 95% CI [{r[1]:+.2f}, {r[2]:+.2f}] against the "
            f"{paired.PRACTICAL_PP:g} pp threshold → **{v}**."
        )
    if r2 := l2(med):
        pln, p, v = r2
        lines.append(
            f"- **L2** ({pln} collapses): median error after one deletion, mean over {p[3]} seeds "
            f"{p[0]:.2f}%, 95% CI [{p[1]:.2f}, {p[2]:.2f}] against {COLLAPSE_PCT:g}% (chance 90%) → **{v}**."
        )
    if c := l3(med):
        lines.append(skeleton.verdict_line(c, "**L3** (plain hurt more than residual by a deletion)"))
    return lines or ["- No net to read."]


def table_section(med: pd.DataFrame, single: pd.DataFrame) -> list[str]:
    ds = single[single.downsampling].assign(increase=lambda d: d.test_error - d.intact_error)
    rows = []
    for net, g in med.groupby("net", sort=False):
        d = ds[ds.net == net]
        rows.append(
            {
                "net": net,
                "seeds": len(g),
                "intact error %": f"{g.intact_error.mean():.2f}",
                "median error after one deletion %": f"{g.median_error.mean():.2f}",
                "median increase (pp)": f"{g.median_increase.mean():+.2f}",
                "downsampling blocks: increase (pp)": f"{d.increase.mean():+.2f}" if len(d) else "not deletable",
            }
        )
    return [markdown.table(pd.DataFrame(rows))]


def paths_section(paths: pd.DataFrame) -> list[str]:
    from reslab.probes.lesion import CENTRAL, effective_lengths

    if paths.empty:
        return ["No residual net has path gradients."]
    rows = []
    for (net, seed), g in paths.groupby(["net", "seed"]):
        lo, hi = effective_lengths(g.to_dict("records"))
        n = int(g.length.max())
        rows.append(
            {
                "net": net,
                "seed": seed,
                "blocks n": n,
                f"central {CENTRAL:.0%} of the gradient: lengths": f"{lo}-{hi}",
                "top below n/2": "yes" if hi < n / 2 else "no",
            }
        )
    return [markdown.table(pd.DataFrame(rows))]


def identity_section(ratios: pd.DataFrame) -> list[str]:
    if ratios.empty:
        return ["No residual net has branch ratios."]
    sh = near_identity_shares(ratios)
    rows = [
        {
            "net": net,
            "seeds": len(g),
            "blocks": int(g.blocks.iloc[0]),
            f"near an identity (ratio < {NEAR_IDENTITY:g}), % of blocks": ", ".join(
                f"{v:.1f}" for v in g.near_identity_pct
            ),
        }
        for net, g in sh.groupby("net", sort=False)
    ]
    lines = [markdown.table(pd.DataFrame(rows)), ""]
    if c := l6(ratios):
        lines.append(
            skeleton.verdict_line(
                c,
                f"**L6** (deeper ResNets have more near-zero branches; a difference in "
                f"percentage points of blocks, {c.worse} − {c.better})",
            )
        )
    return lines


def measured_line(single: pd.DataFrame, rand: pd.DataFrame) -> str:
    """What the deletions were measured on, from the files (experiments/lesion.md, amendment of 2026-12-04)."""
    images = sorted({int(v) for v in single["images"]}) if "images" in single else []
    draws = sorted({int(v) for v in rand["draws"]}) if "draws" in rand else []
    if not images:
        return "- **Measured on:** not recorded in these lesion files (written before the files recorded it)."
    return (
        f"- **Measured on:** the first {', '.join(f'{n:,}' for n in images)} test images (eval mode, BN as trained); "
        f"random deletions in {', '.join(map(str, draws)) or '?'} draws per k."
    )


def build(runs: Path, reports: Path, profile: str, study: str = "budget", steps: str = "3200") -> Path:
    results, single, rand, paths, ratios = load(runs, study, profile, int(steps))
    out = Path(reports) / "lesion"
    out.mkdir(parents=True, exist_ok=True)
    med = medians(single)
    skeleton.write_csv(med, out / "medians.csv")
    names = figures(single, rand, paths, out)
    banner = skeleton.cpu_banner(
        profile,
        f"The nets trained {int(steps):,} iterations of 32 images (the `{study}` "
        "study's rung): every verdict is a reading at that budget.",
    )
    lines = [
        *skeleton.header(
            "Deleting blocks: the lesion study",
            results,
            study,
            "[experiments/lesion.md](../../experiments/lesion.md)",
            banner,
            command=f"reslab-report lesion name={study} profile={profile} steps={steps}",
        ),
        measured_line(single, rand),
        "",
        "## Verdicts",
        "",
        *verdict_section(med),
        "",
        "## Single and random deletions",
        "",
        f"![lesion]({names[0]})",
        "",
        "_How to read: left, the test error with one block deleted (residual: its branch removed, shortcut kept; "
        "plain: the block skipped where the shape allows); right, with k blocks deleted at random._",
        "",
        *table_section(med, single),
        "",
        "## Effective paths",
        "",
        *([f"![paths]({names[1]})", ""] if len(names) > 1 else []),
        *paths_section(paths),
        "",
        "## Do unneeded blocks become identities?",
        "",
        *(
            [f"![branch ratios]({ratio_figure(ratios, out / 'branch_ratios.png').name})", ""]
            if not ratios.empty
            else []
        ),
        *identity_section(ratios),
        "",
        "Per-run medians: [medians.csv](medians.csv).",
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"
