"""reports/convergence-<study>/: does the residual net converge faster than the plain net of the same depth?
(experiments/convergence.md; issue 26, item 3). Trains nothing: it reads the curves of a study's runs.

Compute (iterations to each training-error target per run, the paired log2 ratios, the rule), then the figures, then
one function per section. The rule is reslab.report.paired's with its threshold in doublings for C1 (iterations)
and in pp for C2 (end point); the seeds an open cell needs come from reslab.report.power, which simulates the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reslab import io
from reslab.report import markdown, paired, power, skeleton, templates
from reslab.report.results import load_csvs, load_results

COLUMN = "running_train_error"  # train mode, averaged over the images since the previous curve point
TARGETS = {"budget": (80.0, 70.0, 60.0, 50.0, 40.0)}  # by profile (experiments/convergence.md); others: DEFAULT
DEFAULT_TARGETS = (80.0, 70.0, 60.0)
HORIZON = {"budget": 2560}  # the stable phase both arms of the budget study share; others: the runs' length
END_STEPS = {"budget": 3200}  # C2 reads the rung of this budget; others: the runs' end
CONFIRMATORY = ("budget",)  # studies whose runs the plan names as confirmatory data; every other is exploratory
PRACTICAL = math.log2(1.25)  # C1's threshold: 25 % fewer iterations, in doublings
PRACTICAL_PP = paired.PRACTICAL_PP
VARY = ("profile.max_steps", "profile.decay.shape")  # a budget study's rungs differ in these on purpose


# Compute.


def steps_to(curve: pd.DataFrame, target: float, horizon: float) -> tuple[float, bool]:
    """(iterations at which the curve's running training error first reaches `target`, reached?), linearly
    interpolated between that curve point and the one before; (horizon, False) when it does not by the horizon."""
    c = curve[["step", COLUMN]].dropna().sort_values("step")
    c = c[c.step <= horizon]
    s, y = c.step.to_numpy(float), c[COLUMN].to_numpy(float)
    hit = np.nonzero(y <= target)[0]
    if not len(hit):
        return float(horizon), False
    i = int(hit[0])
    if i == 0:
        return float(s[0]), True
    frac = (y[i - 1] - target) / (y[i - 1] - y[i])
    return float(s[i - 1] + frac * (s[i] - s[i - 1])), True


def trunks(results: pd.DataFrame) -> pd.DataFrame:
    """Per family, depth and seed the run trained from step 0 for the longest (a ladder's trunk; every run of a
    study without a ladder), with the linear decay where a pilot has several shapes."""
    r = results.copy()
    r["start"] = [
        int(((x or {}).get("start") or {}).get("step") or 0) if isinstance(x, dict) else 0
        for x in r.get("ladder", pd.Series([None] * len(r), index=r.index))
    ]
    r["shape"] = [
        (x or {}).get("shape", "linear") if isinstance(x, dict) else "linear"
        for x in r.get("lr_decay", pd.Series([None] * len(r), index=r.index))
    ]
    r = r[(r.start == 0) & (r["shape"] == "linear")]
    r = r.sort_values("steps_planned").groupby(["family", "depth", "seed"], as_index=False).tail(1)
    return r.sort_values(["family", "depth", "seed"]).reset_index(drop=True)


def horizon_of(runs: pd.DataFrame, profile: str) -> int:
    return int(HORIZON.get(profile, runs.steps_planned.min()))


def reach_table(runs: pd.DataFrame, curves: pd.DataFrame, targets, horizon: int) -> pd.DataFrame:
    """One row per run and target: iterations to the target (censored at the horizon) and whether it got there."""
    rows = []
    for r in runs.itertuples():
        c = curves[curves.label == r.label]
        c = c[c.seed == r.seed]
        for t in targets:
            steps, hit = steps_to(c, t, horizon)
            rows.append(
                {
                    "family": r.family,
                    "depth": int(r.depth),
                    "seed": int(r.seed),
                    "label": r.label,
                    "target": t,
                    "steps": steps,
                    "reached": hit,
                }
            )
    return pd.DataFrame(rows)


def depths(reach: pd.DataFrame) -> list[int]:
    """Depths where both families ran."""
    fam = reach.groupby("depth").family.agg(set)
    return [int(d) for d, f in fam.items() if {"plain", "resnet"} <= f]


def c1_contrasts(reach: pd.DataFrame, depth: int) -> tuple[list[paired.Paired], list[float]]:
    """C1 at one depth: per target, log2(plain's iterations) - log2(residual's), paired by seed; one Holm family.
    Returns the tested contrasts and the targets that neither net reached in some seed (no reading)."""
    out, unread = [], []
    for t, g in reach[reach.depth == depth].groupby("target", sort=False):
        p, r = g[g.family == "plain"].set_index("seed"), g[g.family == "resnet"].set_index("seed")
        seeds = sorted(set(p.index) & set(r.index))
        if not seeds or any(not (p.reached[s] or r.reached[s]) for s in seeds):
            unread.append(float(t))
            continue
        c = paired.paired(
            f"C1 depth {depth}, {t:g} %",
            f"log2 iterations to {t:g} % training error",
            f"plain-{depth}",
            f"resnet-{depth}",
            {s: math.log2(p.steps[s]) for s in seeds},
            {s: math.log2(r.steps[s]) for s in seeds},
        )
        c.extra.update(
            target=float(t),
            plain_reached=int(p.reached[seeds].sum()),
            resnet_reached=int(r.reached[seeds].sum()),
            plain_steps=float(p.steps[seeds].mean()),
            resnet_steps=float(r.steps[seeds].mean()),
        )
        out.append(c)
    paired.decide_family(out, f"C1 depth {depth}", practical=PRACTICAL)
    for c in out:
        _size(c, len(out), PRACTICAL)
    return out, unread


def end_errors(results: pd.DataFrame, profile: str, depth: int) -> dict[str, dict[int, float]]:
    """C2's values: per family at `depth`, {seed: training error at the end of the shared budget} (eval mode on
    fixed training images where the run measured it, else the last epoch's running error)."""
    r = results[results.depth == depth]
    end = END_STEPS.get(profile)
    if end is not None:
        r = r[r.steps_planned == end]
        if "lr_decay" in r:
            r = r[[(x or {}).get("shape", "linear") == "linear" if isinstance(x, dict) else True for x in r.lr_decay]]
    out: dict[str, dict[int, float]] = {}
    for x in r.itertuples():
        v = getattr(x, "train_eval_error", None)
        v = float(v) if v is not None and v == v else float(x.train_error)
        out.setdefault(x.family, {})[int(x.seed)] = v
    return out


def c2_contrast(results: pd.DataFrame, profile: str, depth: int) -> paired.Paired | None:
    e = end_errors(results, profile, depth)
    if "plain" not in e or "resnet" not in e:
        return None
    c = paired.paired(f"C2 depth {depth}", "train_error", f"plain-{depth}", f"resnet-{depth}", e["plain"], e["resnet"])
    paired.decide_family([c], f"C2 depth {depth}")
    _size(c, 1, PRACTICAL_PP)
    return c


def _size(c: paired.Paired, m: int, practical: float) -> None:
    """Seeds the rule needs for an open contrast: a true difference of twice the threshold, and a true zero."""
    if c.verdict == "inconclusive" and np.isfinite(c.sd) and c.sd > 0:
        c.extra["seeds_effect"] = power.seeds_needed(2 * practical, c.sd, m, practical=practical)
        c.extra["seeds_equivalence"] = power.seeds_needed(0.0, c.sd, m, practical=practical)


def c1_reading(cs: list[paired.Paired]) -> str:
    """The plan's reading of C1 at one depth from its targets' verdicts."""
    v = {c.verdict for c in cs}
    if not cs:
        return "no reading (no target reached)"
    if len(v) == 1:
        return {
            "supported": "supported (the residual net is faster at every target)",
            "contradicted": "contradicted (the plain net is faster at every target)",
            "no practical difference": "no practical difference at any target",
            "inconclusive": "inconclusive at every target",
        }[v.pop()]
    return "mixed: " + "; ".join(f"{c.extra['target']:g} %: {c.verdict}" for c in cs)


C2_READING = {
    "no practical difference": "supported (similar end point)",
    "supported": "contradicted (the residual net ends better)",
    "contradicted": "contradicted (the plain net ends better)",
    "inconclusive": "inconclusive",
}


# Figures.


def curves_figure(curves: pd.DataFrame, runs: pd.DataFrame, targets, horizon: int, path: Path, title: str) -> Path:
    """Running training error against iterations per depth: plain dashed, residual solid, mean over seeds with a
    min-max band; the targets as dotted lines."""
    from reslab.report import plots

    plt = plots.plt
    ds = sorted(runs.depth.unique())
    fig, axes = plt.subplots(1, len(ds), figsize=(3.6 * len(ds), 3.4), sharey=True, squeeze=False)
    for ax, d in zip(axes[0], ds):
        for fam, style, color in (("plain", "--", "tab:red"), ("resnet", "-", "tab:blue")):
            labels = set(runs[(runs.depth == d) & (runs.family == fam)].label)
            c = curves[curves.label.isin(labels) & (curves.step <= horizon)].dropna(subset=[COLUMN])
            if c.empty:
                continue
            s = c.groupby("step")[COLUMN].agg(["mean", "min", "max"])
            ax.plot(s.index, s["mean"], style, color=color, label=f"{fam}-{d}")
            ax.fill_between(s.index, s["min"], s["max"], color=color, alpha=0.15)
        for t in targets:
            ax.axhline(t, color="grey", ls=":", lw=0.8)
        ax.set_xlabel("iteration")
        ax.set_title(f"depth {d}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("running training error (%)")
    fig.suptitle(title, fontsize=10)
    return plots._save(fig, path)


def ratios_figure(cs: list[paired.Paired], path: Path, title: str) -> Path:
    """Per depth and target the per-seed log2 ratios (dots), their mean and 95% CI, and the +-threshold band."""
    from reslab.report import plots

    plt = plots.plt
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(cs) + 2), 3.6))
    for i, c in enumerate(cs):
        ax.plot([i] * c.n, c.diffs, "o", color="grey", ms=3, alpha=0.7)
        if np.isfinite(c.ci[0]):
            ax.errorbar([i], [c.mean], yerr=[[c.mean - c.ci[0]], [c.ci[1] - c.mean]], fmt="s", color="k", capsize=3)
    ax.axhspan(-PRACTICAL, PRACTICAL, color="tab:green", alpha=0.12, label=f"±{PRACTICAL:.2f} (25 % fewer iterations)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(cs)))
    ax.set_xticklabels([f"{c.worse.split('-')[1]}\n{c.extra['target']:g}%" for c in cs], fontsize=7)
    ax.set_xlabel("depth / training-error target")
    ax.set_ylabel("log2(plain iters / residual iters)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return plots._save(fig, path)


# Sections.


def role_banner(study: str) -> str:
    if study in CONFIRMATORY:
        return ""
    return (
        f"> **Exploratory (seen data).** The runs of `{study}` were reported before "
        "[experiments/convergence.md](../../experiments/convergence.md) was written, and their curves were looked "
        "at; no verdict below is confirmatory. The confirmatory data are the budget study's fresh seeds.\n\n"
    )


def _seeds_text(c: paired.Paired, practical: float, unit: str) -> str:
    if "seeds_effect" not in c.extra:
        return ""
    n1, n0 = c.extra.get("seeds_effect"), c.extra.get("seeds_equivalence")
    s = lambda n: str(n) if n else f"more than {power.CAP}"  # noqa: E731
    return (
        f"; seeds the rule needs for {power.TARGET:.0%} power at this family's strictest Holm level: {s(n1)} for "
        f"a true {2 * practical:.2f} {unit}, {s(n0)} to call a true 0 'no practical difference' (at this sd)"
    )


def answer_section(
    by_depth: dict[int, list[paired.Paired]],
    unread: dict[int, list[float]],
    c2: paired.Paired | None,
    profile: str,
    horizon: int,
) -> list[str]:
    out = []
    for d, cs in by_depth.items():
        extra = (
            f" (no reading at {', '.join(f'{t:g} %' for t in unread[d])}: neither net got there in some seed)"
            if unread.get(d)
            else ""
        )
        out.append(f"- **C1, depth {d}: {c1_reading(cs)}**{extra}.")
    if c2 is not None:
        out.append(
            f"- **C2, depth {c2.worse.split('-')[1]} (similar end point): {C2_READING[c2.verdict]}**: "
            f"{c2.worse} − {c2.better} training error {c2.mean:+.2f} pp over {c2.n} seeds, 95% CI "
            f"{skeleton.ci_text(c2)}, equivalence (TOST ±{PRACTICAL_PP:g} pp) p = "
            f"{skeleton.p_text(c2.p_equiv_adj)}, paired t p = {skeleton.p_text(c2.p_adj)} (rule: "
            f"{skeleton.direction(c2)})"
            f"{_seeds_text(c2, PRACTICAL_PP, 'pp')}."
        )
        if profile not in END_STEPS:
            out.append(
                f"- C2 is a **budget reading** here: at {horizon:,} iterations the curves above are still "
                "falling, so the 'end point' is where this budget stops, not where the nets converge; the "
                "budget study's 3,200-iteration rung (experiments/convergence.md) is the confirmatory test."
            )
    return out


def c1_table(cs: list[paired.Paired], n_by_depth: dict[int, int]) -> pd.DataFrame:
    rows = []
    for c in cs:
        d = int(c.worse.split("-")[1])
        n = n_by_depth[d]
        rows.append(
            {
                "depth": d,
                "target (train err %)": f"{c.extra['target']:g}",
                "plain: mean iters (reached)": f"{c.extra['plain_steps']:.0f} ({c.extra['plain_reached']}/{n})",
                "residual: mean iters (reached)": f"{c.extra['resnet_steps']:.0f} ({c.extra['resnet_reached']}/{n})",
                "log2 ratio, mean": f"{c.mean:+.2f}",
                "ratio": f"{2**c.mean:.2f}x",
                "95% CI": skeleton.ci_text(c),
                "Holm p": skeleton.p_text(c.p_adj),
                "equivalence Holm p": skeleton.p_text(c.p_equiv_adj),
                "verdict": skeleton.direction(c),
                "seeds to decide (2x threshold / 0)": skeleton.seeds_cell(c),
            }
        )
    return pd.DataFrame(rows)


def rule_lines(targets, horizon: int) -> list[str]:
    return [
        f"Iterations to a target: the first curve point whose running training error (train mode, over the "
        f"images since the previous point) is at or below it, interpolated linearly; a run that does not get "
        f"there by iteration {horizon:,} counts as {horizon:,} (censored: this can only shrink a difference). "
        f"Targets {', '.join(f'{t:g} %' for t in targets)}. Per seed, log2(plain's iterations) − log2(residual's): "
        f"positive = the residual net is faster. The paired rule of the other studies (two-sided paired t, Holm "
        f"within each depth's targets, alpha {paired.ALPHA}), with the practical threshold in doublings: "
        f"{PRACTICAL:.2f} (25 % fewer iterations); 'no practical difference' by TOST at the same Holm level. "
        f"C2: the same rule on the end point's training error with the {PRACTICAL_PP:g} pp threshold."
    ]


@dataclass
class Study:
    """What the report says, computed once from the runs trained from step 0."""

    study: str
    profile: str
    results: pd.DataFrame
    trunk: pd.DataFrame
    horizon: int
    targets: tuple
    curves: pd.DataFrame
    by_depth: dict
    unread: dict
    all_c1: list
    c2: object
    both: pd.DataFrame
    n_by_depth: dict


def build(runs: Path, reports: Path, profile: str, study: str = "depth") -> Path:
    out = Path(reports) / f"convergence-{study}"
    s = compute(runs, profile, study, out)
    figures(s, out)
    lines = [*header_section(s), *answer_lines(s), *curves_section(s), *iterations_section(s)]
    io.write_text(out / "README.md", "\n".join(lines))
    return out / "README.md"


def compute(runs: Path, profile: str, study: str, out: Path) -> Study:
    results = load_results(runs, study, profile, vary=VARY)
    trunk = trunks(results)
    horizon = horizon_of(trunk, profile)
    targets = TARGETS.get(profile, DEFAULT_TARGETS)
    curves = load_csvs(trunk, "curves.csv")
    reach = reach_table(trunk, curves, targets, horizon)
    out.mkdir(parents=True, exist_ok=True)  # after the runs passed their checks: a refused report writes nothing
    skeleton.write_csv(reach, out / "iterations.csv")
    by_depth, unread = {}, {}
    for d in depths(reach):
        by_depth[d], unread[d] = c1_contrasts(reach, d)
    all_c1 = [c for cs in by_depth.values() for c in cs]
    c2 = c2_contrast(results, profile, min(by_depth)) if by_depth else None
    skeleton.write_csv(skeleton.contrasts_frame(all_c1 + ([c2] if c2 else [])), out / "contrasts.csv")
    return Study(
        study=study,
        profile=profile,
        results=results,
        trunk=trunk,
        horizon=horizon,
        targets=targets,
        curves=curves,
        by_depth=by_depth,
        unread=unread,
        all_c1=all_c1,
        c2=c2,
        # A depth with plain and residual runs (a budget study before its plain arm has none).
        both=trunk[trunk.depth.isin(by_depth)],
        n_by_depth={d: int(trunk[(trunk.depth == d)].seed.nunique()) for d in by_depth},
    )


def figures(s: Study, out: Path) -> None:
    if not s.both.empty:
        curves_figure(
            s.curves,
            s.both,
            s.targets,
            s.horizon,
            out / "curves.png",
            f"{s.study}: running training error, mean over seeds (band min-max); dotted: targets",
        )
    if s.all_c1:
        ratios_figure(s.all_c1, out / "ratios.png", f"{s.study}: plain vs residual iterations to each target, per seed")


def header_section(s: Study) -> list[str]:
    banner = role_banner(s.study) + skeleton.cpu_banner(
        s.profile,
        "It reads the curves of training runs of this budget; iterations to a target measure how fast the "
        "nets get there at this budget, not where they end at the paper's.",
    )
    return [
        *skeleton.header(
            f"Does the residual net converge faster? ({s.study} runs)",
            s.results,
            s.study,
            "[experiments/convergence.md](../../experiments/convergence.md)",
            banner,
            command=f"reslab-report convergence name={s.study} profile={s.profile}",
        ),
        f"- **Curves read:** {len(s.trunk)} runs trained from step 0 ({', '.join(sorted(set(s.trunk.label)))}), up "
        f"to iteration {s.horizon:,}.",
        "",
    ]


def answer_lines(s: Study) -> list[str]:
    if s.by_depth:
        body = answer_section(s.by_depth, s.unread, s.c2, s.profile, s.horizon)
    else:
        body = [
            "Not answerable yet: no depth has both plain and residual runs trained from step 0 (in "
            "the budget study, the plain arm)."
        ]
    return ["## Answer", "", *body, ""]


def curves_section(s: Study) -> list[str]:
    if s.both.empty:
        body = ["No depth has both plain and residual runs yet: nothing to compare."]
    else:
        body = [templates.fill("convergence/curves_figure.md")]
    return ["## Training curves", "", *body, ""]


def iterations_section(s: Study) -> list[str]:
    lines = ["## Iterations to each target", "", *rule_lines(s.targets, s.horizon), ""]
    if not s.all_c1:
        return lines
    lines += [
        markdown.table(c1_table(s.all_c1, s.n_by_depth)),
        "",
        templates.fill("convergence/ratios_figure.md"),
        "",
    ]
    open_ = [c for c in s.all_c1 if c.verdict == "inconclusive" and "seeds_effect" in c.extra]
    if open_:
        lines += ["**Undecided cells:**", ""]
        lines += [
            f"- {c.name}: mean {c.mean:+.2f} doublings, 95% CI {skeleton.ci_text(c)}"
            f"{_seeds_text(c, PRACTICAL, 'doublings')}."
            for c in open_
        ]
        lines.append("")
    return lines
