"""reports/zero-init/: the budget study's initialisation control (experiments/budget.md; issue 24 item 3).

Option-A ResNets at depth 20, 56 and 110, each with the standard initialisation (`identity-A`) and with zero-initialised
residual branches (`zero-init`: the last BN scale of every branch starts at 0, Goyal et al. 2017), `cpu` profile, the
same seeds. Three questions, each with the plan's rule:
- Z1 does zero-init remove the initial loss above chance (ln 10) and the early spikes? Read per depth from each run's
  first probe window and its later windows (experiments/depth.md's spike rule), with the paired difference in nats;
- Z2 does it change the error at 800 iterations? zero-init − standard per depth, one Holm family;
- Z3 does it change H2 at 800 iterations? The gap ResNet-d − ResNet-20 under each initialisation (one Holm family per
  initialisation), and the change of the gap (standard − zero-init, one Holm family).
800 iterations is a short budget: Z2 and Z3 are readings at this budget (the budget study asks the longer question).
Compute, then the figure, then one function per section.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from reslab import io
from reslab.report import markdown, paired, skeleton
from reslab.report.depth import BLOWUP_LOSS, blow_up
from reslab.report.results import load_csvs, load_results

STANDARD, ZERO = "identity-A", "zero-init"
CHANCE_LOSS = math.log(10)
METRIC = "test_error"
EARLY_STEPS = 200  # the window the figure shows: warm-up, the spikes and the plain/residual split happen before it


# Compute.


def run_rows(results: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in results.itertuples():
        c = curves[(curves.label == r.label) & (curves.seed == r.seed)] if not curves.empty else curves
        spike, peak, first = blow_up(c)
        rows.append(
            {
                "label": r.label,
                "init": r.label.rsplit("-", 1)[0],
                "depth": int(r.depth),
                "seed": int(r.seed),
                "status": r.status,
                "first_window_loss": first,
                "peak_later_loss": peak,
                "loss_spike": bool(spike),
                "train_error": float(r.train_error),
                "test_error": float(r.test_error),
                "wall_seconds": round(float(r.wall_seconds), 1),
                "git_commit": r.git_commit,
                "key": r.key,
            }
        )
    return pd.DataFrame(rows).sort_values(["depth", "init", "seed"]).reset_index(drop=True)


def by_seed(runs: pd.DataFrame, init: str, depth: int, col: str = METRIC) -> dict[int, float]:
    d = runs[(runs.init == init) & (runs.depth == depth)]
    return {int(s): float(v) for s, v in zip(d.seed, d[col])}


def gap(runs: pd.DataFrame, init: str, deep: int, shallow: int) -> dict[int, float]:
    a, b = by_seed(runs, init, deep), by_seed(runs, init, shallow)
    return {s: a[s] - b[s] for s in sorted(set(a) & set(b))}


def families(runs: pd.DataFrame) -> dict[str, list[paired.Paired]]:
    """Z2, Z3 (per initialisation) and Z3's change of the gap, each one Holm family; decided."""
    depths = sorted(runs.depth.unique())
    shallow, deeper = depths[0], depths[1:]
    fam = {
        "Z2: zero-init against the standard init": [
            paired.paired(
                f"zero-init at depth {d}",
                METRIC,
                f"{STANDARD}-{d}",
                f"{ZERO}-{d}",
                by_seed(runs, STANDARD, d),
                by_seed(runs, ZERO, d),
            )
            for d in depths
        ]
    }
    for init in (STANDARD, ZERO):
        fam[f"Z3: H2 at 800 iterations, {init}"] = [
            paired.paired(
                f"{init}: depth {d} vs {shallow}",
                METRIC,
                f"{init}-{d}",
                f"{init}-{shallow}",
                by_seed(runs, init, d),
                by_seed(runs, init, shallow),
            )
            for d in deeper
        ]
    fam["Z3: change of the gap (standard − zero-init)"] = [
        paired.paired(
            f"gap {d} − {shallow}: standard vs zero-init",
            METRIC,
            f"gap {d}−{shallow} ({STANDARD})",
            f"gap {d}−{shallow} ({ZERO})",
            gap(runs, STANDARD, d, shallow),
            gap(runs, ZERO, d, shallow),
        )
        for d in deeper
    ]
    skeleton.decide(fam)
    return fam


def early_reading(runs: pd.DataFrame, depth: int) -> dict:
    """Z1 at one depth, the plan's rule: zero-init removes the initial loss above chance if the standard init starts
    above chance in most seeds and zero-init in none; it removes the spikes if the standard init spikes in a seed and
    zero-init in none. The paired difference of first-window loss (nats) with its 95% CI beside it."""
    s = runs[(runs.init == STANDARD) & (runs.depth == depth)]
    z = runs[(runs.init == ZERO) & (runs.depth == depth)]
    above_s, above_z = int((s.first_window_loss > CHANCE_LOSS).sum()), int((z.first_window_loss > CHANCE_LOSS).sum())
    d = paired.paired(
        f"first-window loss at depth {depth}",
        "first_window_loss",
        STANDARD,
        ZERO,
        by_seed(runs, STANDARD, depth, "first_window_loss"),
        by_seed(runs, ZERO, depth, "first_window_loss"),
    )
    return {
        "depth": depth,
        "seeds": len(s),
        "above_standard": above_s,
        "above_zero": above_z,
        "spikes_standard": int(s.loss_spike.sum()),
        "spikes_zero": int(z.loss_spike.sum()),
        "removes_initial_loss": above_s > len(s) / 2 and above_z == 0,
        "removes_spikes": s.loss_spike.any() and not z.loss_spike.any(),
        "diff": d,
    }


# Figure.


def early_curves(curves: pd.DataFrame, runs: pd.DataFrame, path: Path) -> Path:
    """Running training loss over the first EARLY_STEPS steps, one panel per depth, both initialisations (each seed a
    thin line), chance marked."""
    from reslab.report import plots

    plt = plots.plt
    depths = sorted(runs.depth.unique())
    fig, axes = plt.subplots(1, len(depths), figsize=(4 * len(depths), 3.6), sharey=True, squeeze=False)
    colors = {STANDARD: "tab:red", ZERO: "tab:blue"}
    for ax, depth in zip(axes[0], depths):
        for r in runs[runs.depth == depth].itertuples():
            c = curves[(curves.label == r.label) & (curves.seed == r.seed)]
            c = c[(c.running_images > 0) & (c.step <= EARLY_STEPS)].sort_values("step")
            ax.plot(
                c.step,
                c.running_train_loss,
                marker=".",
                lw=1,
                color=colors[r.init],
                alpha=0.8,
                label=r.init if r.seed == runs.seed.min() else None,
            )
        ax.axhline(CHANCE_LOSS, color="k", ls=":", lw=1)
        ax.axhline(BLOWUP_LOSS, color="grey", ls="--", lw=0.8)
        ax.set_title(f"depth {depth}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("running training loss (nats)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"First {EARLY_STEPS} steps: dotted = chance (ln 10), dashed = spike threshold", fontsize=10)
    return plots._save(fig, path)


# Sections.


def excess_text(runs: pd.DataFrame, depth: int) -> str:
    """How far above chance each initialisation starts, beside a "not removed" verdict: the plan's rule has no
    tolerance, so a zero-init net that starts a few hundredths of a nat above ln 10 counts as "above chance" like a
    standard net several nats above it. A description added by the amendment of 2026-12-04 (night) after arm 4 was
    seen (experiments/budget.md); the verdict is the rule's and stands."""
    excess = lambda init: runs[(runs.init == init) & (runs.depth == depth)].first_window_loss - CHANCE_LOSS  # noqa: E731
    z, s = excess(ZERO), excess(STANDARD)
    return (
        f" (by the rule, which has no tolerance: zero-init's first windows lie {z.min():+.2f} to {z.max():+.2f} nats "
        f"from ln 10, the standard init's {s.min():+.2f} to {s.max():+.2f}; a description, not a second rule)"
    )


def early_section(runs: pd.DataFrame) -> list[str]:
    rows, lines = [], []
    for depth in sorted(runs.depth.unique()):
        r = early_reading(runs, depth)
        d = r["diff"]
        for init in (STANDARD, ZERO):
            g = runs[(runs.init == init) & (runs.depth == depth)]
            rows.append(
                {
                    "depth": depth,
                    "init": init,
                    "seeds": len(g),
                    "first-window loss (mean, per seed)": f"{g.first_window_loss.mean():.2f} ("
                    + ", ".join(f"{v:.2f}" for v in g.first_window_loss)
                    + ")",
                    "above chance": f"{int((g.first_window_loss > CHANCE_LOSS).sum())} of {len(g)}",
                    "loss spike": f"{int(g.loss_spike.sum())} of {len(g)}",
                }
            )
        if r["removes_initial_loss"]:
            loss = "removed"
        elif r["above_standard"] > r["seeds"] / 2:
            loss = "not removed"
        else:
            loss = "not present under the standard init"
        spikes = "removed" if r["removes_spikes"] else "not removed" if r["spikes_standard"] else "none to remove"
        lines.append(
            f"- Depth {depth}: first-window loss standard − zero-init {d.mean:+.2f} nats, 95% CI "
            f"{skeleton.ci_text(d)}; initial loss above chance: **{loss}**"
            + (excess_text(runs, depth) if loss == "not removed" else "")
            + f"; spikes: **{spikes}**."
        )
    return [
        f"The running training loss of each run's first probe window (chance: ln 10 = {CHANCE_LOSS:.2f}) and a "
        f"spike (a later window above {BLOWUP_LOSS:g} nats, experiments/depth.md's rule).",
        "",
        markdown.table(pd.DataFrame(rows)),
        "",
        "Rule (experiments/budget.md): zero-init removes the initial loss above chance at a depth if the standard "
        "init starts above chance in most seeds and zero-init in none; it removes the spikes if the standard init "
        "spikes in a seed and zero-init in none.",
        "",
        *lines,
    ]


def family_section(fam: list[paired.Paired], note: str) -> list[str]:
    return [note, "", markdown.table(skeleton.contrast_table(fam)), ""]


def build(runs: Path, reports: Path, profile: str, study: str = "zero-init") -> Path:
    results = load_results(runs, study, profile)
    curves = load_csvs(results, "curves.csv")
    rows = run_rows(results, curves)
    out = Path(reports) / study
    out.mkdir(parents=True, exist_ok=True)
    skeleton.write_csv(rows, out / "runs.csv")
    fam = families(rows)
    skeleton.write_csv(skeleton.contrasts_frame([c for cs in fam.values() for c in cs]), out / "contrasts.csv")
    early_curves(curves, rows, out / "early_loss.png")
    z2, std, zero, change = fam.values()
    banner = skeleton.cpu_banner(
        profile,
        "800 iterations of 32 images: Z2 and Z3 are readings at this short budget "
        "(the budget study, reports/budget/, asks how depth pays with budget).",
    )
    lines = [
        *skeleton.header(
            "Zero-initialised residual branches: the initialisation control",
            results,
            study,
            "[experiments/budget.md](../../experiments/budget.md)",
            banner,
        ),
        "## Z1: initial loss and spikes",
        "",
        "![early loss](early_loss.png)",
        "",
        "_How to read: each line one run's running training loss over its first steps; red the standard "
        "initialisation, blue zero-initialised branches; a net that predicts the uniform distribution sits on the "
        "dotted line._",
        "",
        *early_section(rows),
        "",
        skeleton.rule_text(
            "Z2 is one Holm family; Z3 is one family per initialisation and one for the change of the gap."
        ),
        "",
        "## Z2: does zero-init change the error at 800 iterations?",
        "",
        *family_section(z2, "Test error, standard − zero-init per seed: positive = zero-init better."),
        "## Z3: does zero-init change H2 at 800 iterations?",
        "",
        *family_section(std, "Standard init: ResNet-d − ResNet-20 per seed (positive = the deeper net worse)."),
        *family_section(zero, "Zero-init: ResNet-d − ResNet-20 per seed (positive = the deeper net worse)."),
        *family_section(
            change,
            "Change of the gap, standard − zero-init per seed (positive = zero-init shrinks the deeper net's deficit).",
        ),
    ]
    design = skeleton.design_line(fam)
    lines += [design, ""] if design else []
    lines += ["Per-run values: [runs.csv](runs.csv); contrasts: [contrasts.csv](contrasts.csv)."]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"
