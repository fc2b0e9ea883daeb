"""reports/descendants/: ResNet's descendants (Wide ResNet, ResNeXt, RoR, DPN) at matched parameters, one tested
claim per paper, from runs/<study>/<profile>/ (the trained nets) and its cost.csv (reslab-cost, measured after the
sweep, alone).

Decision rule: experiments/descendants.md (plan fixed 2026-12-05, before the confirmatory run): the block study's
paired rule (reslab.report.paired: Holm within each claim's family, a 2 pp threshold, TOST for 'no practical
difference') with one family per paper. A claim is read at the profile's budget (800 iterations at `cpu`): an
ordering at that budget, so each verdict carries the gap's course over training (the curve probe's test error at the
lr drop and at the end) as its budget reading. The block study's nets stand beside them in the Pareto figure as a
reference (its committed results.csv: other seeds, never in a verdict).

The nets are found by their conf/block entry (variant.name), not by family: ResNeXt's claim compares two ResNeXts.
Compute, then figures, then one function per section, as reslab.report.block, whose table and cost helpers it reuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reslab import io
from reslab.report import block, markdown, paired, plots, power, published, skeleton, templates
from reslab.report.results import load_csvs
from reslab.report.stats import pm

PLAN = (
    "[experiments/descendants.md](../../experiments/descendants.md), plan fixed 2026-12-05 from the pilot, before the "
    "confirmatory run"
)
DESCENDANTS = ["wrn", "resnext", "ror", "dpn"]
FAMILIES = block.FAMILIES + DESCENDANTS  # colours: the block study's families keep theirs
REFERENCE = Path("block") / "results.csv"  # under reports/: the block study's nets, per net (reference only)


@dataclass(frozen=True)
class Claim:
    """One paper's claim: contrasts 'worse − better' between conf/block entries, in the direction the paper
    predicts; the claim's own Holm family."""

    key: str
    paper: str
    says: str
    contrasts: tuple[tuple[str, str], ...]
    note: str = ""


CLAIMS = (
    Claim(
        "W",
        "Zagoruyko & Komodakis 2016 (Wide ResNet)",
        "width beats depth at equal parameters: WRN-16-k against the deeper, thinner ResNet-20",
        (("resnet-0.27M", "wrn-0.27M"),),
    ),
    Claim(
        "X",
        "Xie et al. 2017 (ResNeXt)",
        "more groups (cardinality) beat more width at equal complexity: ResNeXt-29 8 groups against 1 group, each "
        "the matcher's width at the budget",
        (("resnext-cardinality1-0.27M", "resnext-0.27M"),),
        "the two nets' parameters differ (each within ±10% of the budget): see the results table",
    ),
    Claim(
        "R",
        "Zhang et al. 2017 (RoR)",
        "shortcuts across each stage and the whole net make the same ResNet train better: RoR-3-20 against "
        "ResNet-20 (identical parameters, only the extra shortcuts differ)",
        (("resnet-0.27M", "ror-0.27M"),),
    ),
    Claim(
        "D",
        "Chen et al. 2017 (DPN)",
        "a residual and a densely connected path together beat either alone: DPN against ResNeXt (the residual "
        "path) and DenseNet-BC (the dense path)",
        (("resnext-0.27M", "dpn-0.27M"), ("densenet-bc-0.27M", "dpn-0.27M")),
    ),
)


def claim_verdict(contrasts: list[paired.Paired]) -> str:
    """The paper's claim from its contrasts' verdicts: supported only if every contrast is; contradicted if any
    is (the net the paper predicts to be worse is better); 'not supported: no practical difference' if every
    contrast is; otherwise open."""
    verdicts = [c.verdict for c in contrasts]
    if not verdicts:
        return "not tested (its nets were not trained)"
    if all(v == "supported" for v in verdicts):
        return "supported"
    if any(v == "contradicted" for v in verdicts):
        return "contradicted"
    if all(v == "no practical difference" for v in verdicts):
        return "not supported: no practical difference"
    return "open (" + ", ".join(verdicts) + ")"


# Runs -> nets.


def entries(df: pd.DataFrame) -> dict[str, str]:
    """conf/block entry name -> the net's label."""
    if "variant" not in df:
        return {}
    out = {}
    for v, label in zip(df["variant"], df.label):
        if isinstance(v, dict) and v.get("name"):
            out.setdefault(v["name"], label)
    return out


def families(df: pd.DataFrame) -> dict[str, list[paired.Paired]]:
    """One Holm family per claim, the contrasts whose two nets were both trained; decided by the rule."""
    net = entries(df)
    fams = {
        c.key: [
            block._contrast(df, f"{c.key}: {worse} − {better}", net[worse], net[better])
            for worse, better in c.contrasts
            if worse in net and better in net
        ]
        for c in CLAIMS
    }
    skeleton.decide(fams, df)
    return fams


def gap_course(curves: pd.DataFrame, c: paired.Paired, drop: int | None) -> dict | None:
    """The contrast's gap (worse − better, curve-probe test error, mean over paired seeds) at the lr drop (the
    last curve point at or before it) and at the last point: whether the budget was still moving it."""
    if curves.empty:
        return None
    d = curves[curves.label.isin([c.worse, c.better])].pivot_table(
        index=["seed", "step"], columns="label", values="test_error"
    )
    if c.worse not in d or c.better not in d:
        return None
    gap = (d[c.worse] - d[c.better]).dropna().groupby(level="step").mean()
    if gap.empty:
        return None
    end = int(gap.index.max())
    at = int(gap.index[gap.index <= drop].max()) if drop and (gap.index <= drop).any() else None
    return {
        "drop_step": at,
        "at_drop": float(gap[at]) if at is not None else np.nan,
        "end_step": end,
        "at_end": float(gap[end]),
    }


def budget_text(course: dict | None, images: int) -> str:
    if course is None:
        return f"Budget reading: an ordering after {images:,} images; the curves were not recorded."
    if course["drop_step"] is None:
        moved = ""
    else:
        change = abs(course["at_end"]) - abs(course["at_drop"])
        moved = (
            f"at the lr drop (step {course['drop_step']}) {course['at_drop']:+.2f} pp, at the end (step "
            f"{course['end_step']}) {course['at_end']:+.2f} pp: "
            + ("**closing**" if change < 0 else "not closing")
            + f" over the last phase ({change:+.2f} pp in size). "
        )
    return (
        f"Budget reading: an ordering after {images:,} images, not the paper's converged claim. The gap on the curve "
        f"probe (256 test images per point, mean over seeds): {moved}The budget study's ladder would measure how it "
        "moves with the budget (not run for these nets)."
    )


def reference(agg: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The block study's nets (its committed per-net results), renamed 'block: <label>' so that they cannot be
    mistaken for this study's nets of the same entry; none if that report is absent."""
    if not Path(path).is_file():
        return agg.iloc[0:0]
    ref = pd.read_csv(path)
    ref["label"] = "block: " + ref.label
    return ref


@dataclass
class Study:
    """What the report says, computed once from the runs and the cost sweep's measurements."""

    study: str
    profile: str
    df: pd.DataFrame
    cost: pd.DataFrame | None
    agg: pd.DataFrame
    ref: pd.DataFrame
    fams: dict
    fronts: dict
    curves: pd.DataFrame
    courses: dict
    pub: pd.DataFrame
    why_not: str | None
    steps: int
    images: int


def build(runs: Path, reports: Path, profile: str, study: str = "descendants") -> Path:
    out = Path(reports) / study
    s = compute(runs, profile, study, out, Path(reports))
    figures(s, out)
    lines = [
        *header_section(s),
        *design_section(s),
        *verdicts_section(s),
        *results_section(s),
        *curves_section(s),
        *published_section(s),
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"


def compute(runs: Path, profile: str, study: str, out: Path, reports: Path) -> Study:
    df = block.load(runs, study, profile)
    out.mkdir(parents=True, exist_ok=True)  # after the runs passed their checks: a refused report writes nothing
    cost = block.load_cost(runs, study, profile)
    agg = block.aggregate(df).merge(block.cost_summary(cost), on="label", how="left")
    fams = families(df)
    everything = [c for f in fams.values() for c in f]
    curves = load_csvs(df, "curves.csv")
    drops = [int(x) for x in df.lr_drop_steps.iloc[0]] if "lr_drop_steps" in df and len(df) else []
    courses = {c.name: gap_course(curves, c, drops[-1] if drops else None) for c in everything}
    skeleton.write_csv(df, out / "runs.csv", block.RUN_COLUMNS)
    skeleton.write_csv(agg, out / "results.csv")
    skeleton.write_csv(skeleton.contrasts_frame(everything), out / "contrasts.csv")
    skeleton.write_csv(skeleton.mcnemar_frame(everything), out / "mcnemar.csv")
    if cost is not None:
        skeleton.write_csv(cost, out / "cost.csv")
    ref = reference(agg, reports / REFERENCE)
    both = pd.concat([agg, ref], ignore_index=True)
    steps = int(df.steps_planned.max())
    return Study(
        study=study,
        profile=profile,
        df=df,
        cost=cost,
        agg=agg,
        ref=ref,
        fams=fams,
        fronts={
            "params": block.pareto_front(both, "params"),
            "train_ips": block.pareto_front(both, "train_ips", higher_is_better=True),
        },
        curves=curves,
        courses=courses,
        pub=published.load(),
        why_not=published.comparability(profile, df.data_checksum.iloc[0], df.data_format.iloc[0]),
        steps=steps,
        images=steps * int(df.batch_size.iloc[0]) if "batch_size" in df else 0,
    )


def styles(points: pd.DataFrame) -> tuple[dict, dict]:
    names = FAMILIES + sorted(set(points.family) - set(FAMILIES))
    markers = {b: block.MARKERS[i % len(block.MARKERS)] for i, b in enumerate(block.budgets_of(points))}
    return plots.fixed_colors(names), {**markers, block.OFF_BUDGET: "x"}


def figures(s: Study, out: Path) -> None:
    plots.paired_differences(
        s.fams,
        out / "paired_differences.png",
        paired.PRACTICAL_PP,
        f"profile {s.profile}: each paper's claim as tested, paired over seeds",
    )
    both = pd.concat([s.agg, s.ref], ignore_index=True)
    colors, markers = styles(both)
    plots.pareto(
        both,
        [("params", "parameters (log)", True), ("train_ips", "training images/s, measured (log)", True)],
        s.fronts,
        colors,
        markers,
        out / "pareto.png",
        f"profile {s.profile}: the descendants and the block study's nets (labels 'block: ...'), test error",
    )
    if not s.curves.empty:
        label_colors = dict(zip(s.agg.label, plots.fixed_colors(list(s.agg.label)).values()))
        drops = [int(x) for x in s.df.lr_drop_steps.iloc[0]] if "lr_drop_steps" in s.df else []
        plots.variant_curves(
            s.curves,
            {"ResNet-20 and its descendants at 0.27M": list(s.agg.label)},
            label_colors,
            out / "curves.png",
            drops,
            f"profile {s.profile}: curve-probe error, mean over seeds (band: min-max)",
        )


# Sections.


def header_section(s: Study) -> list[str]:
    banner = skeleton.cpu_banner(
        s.profile,
        f"Every net trains for {s.steps} iterations ({s.images:,} images) with the block study's recipe; each "
        "verdict is an ordering at this budget, not a reproduction of the papers' numbers.",
    )
    return skeleton.header(
        "ResNet's descendants at matched parameters: one claim per paper", s.df, s.study, PLAN, banner
    )


def design_section(s: Study) -> list[str]:
    net = entries(s.df)
    return [
        "## Design as run",
        "",
        f"- Nets (conf/block entries): {', '.join(f'{e} ({l})' for e, l in net.items())}.",
        *skeleton.sweep_lines(s.df),
        "- The 0.85M arm (its entries exist) was not run: see the plan.",
        "",
    ]


def claim_lines(s: Study, c: Claim) -> list[str]:
    fam = s.fams.get(c.key, [])
    lines = [
        f"### {c.key}. {c.paper}: {c.says}",
        "",
        f"**Claim {c.key}: {claim_verdict(fam)}**"
        + (f" at this budget ({s.steps} iterations, {s.images:,} images: a budget reading)." if fam else ".")
        + (f" Note: {c.note}." if c.note else ""),
        "",
    ]
    for p in fam:
        lines.append(skeleton.verdict_line(p, c.key))
        lines.append(f"  {power_text(p, len(fam))}")
        lines.append(f"  {budget_text(s.courses.get(p.name), s.images)}")
        lines.append(
            f"  Cost, {p.worse} against {p.better}: {block.measured_clause(s.cost, s.agg, p.worse, p.better)}."
        )
    missing = [f"{w} − {b}" for w, b in c.contrasts if not any(p.name.endswith(f"{w} − {b}") for p in fam)]
    if missing:
        lines.append(f"- Not tested (a net was not trained): {', '.join(missing)}.")
    return [*lines, ""]


def power_text(p: paired.Paired, m: int) -> str:
    """The rule's power as applied: these seeds, this family's strictest Holm level, the observed sd, at the plan's
    effects (reslab.report.power)."""
    if p.n < 2 or not (np.isfinite(p.sd) and p.sd > 0):
        return "Power as applied: not computable (fewer than 2 seeds, or no spread)."
    e1, e0 = power.DESIGN_EFFECT_PP, power.EQUIVALENCE_EFFECT_PP
    return (
        f"Power of the rule as applied ({p.n} seeds, Holm level {paired.ALPHA / m:.3g}, sd {p.sd:.2f} pp): "
        f"{power.rule_power(e1, p.sd, p.n, m):.2f} to call a true {e1:g} pp difference, "
        f"{power.rule_power(e0, p.sd, p.n, m):.2f} to call a true {e0:g} pp difference 'no practical difference'."
    )


def verdicts_section(s: Study) -> list[str]:
    rule = (
        "One Holm family per paper's claim (W, X, R: one contrast each; D: two). Primary metric: test error after "
        "training. A claim is supported only if all its contrasts are."
    )
    table = pd.DataFrame(
        [{"claim": c.key, "paper": c.paper, "verdict": claim_verdict(s.fams.get(c.key, []))} for c in CLAIMS]
    )
    everything = [p for f in s.fams.values() for p in f]
    return [
        "## Verdicts (computed by the decision rule)",
        "",
        skeleton.rule_text(rule),
        "",
        markdown.table(table),
        "",
        *[line for c in CLAIMS for line in claim_lines(s, c)],
        skeleton.design_line(s.fams),
        "",
        markdown.table(skeleton.contrast_table(everything)) if everything else "_No contrasts._",
        "",
        "![paired differences](paired_differences.png)",
        "",
        plots.paired_caption(paired.PRACTICAL_PP, "the paper"),
        "",
    ]


def results_section(s: Study) -> list[str]:
    return [
        "## Results per net",
        "",
        templates.fill("block/results.md", chance=f"{skeleton.CHANCE:.0f}"),
        "",
        block.cost_note(s.cost, s.study, s.profile),
        "",
        markdown.table(block.results_table(s.agg)),
        "",
        templates.fill("block/pareto_figure.md"),
        " The block study's nets (labels 'block: ...') come from its committed results (reports/block/results.csv: "
        "its own seeds, cost measured in its own session): a reference for where the descendants sit, in no verdict.",
        "",
        f"- Pareto front, error vs parameters: {', '.join(s.fronts['params']) or '-'}.",
        "- Pareto front, error vs training throughput: "
        f"{', '.join(s.fronts['train_ips']) or 'throughput not measured'}.",
        "",
    ]


def curves_section(s: Study) -> list[str]:
    if s.curves.empty:
        return []
    return ["## Learning curves", "", templates.fill("block/curves_figure.md"), ""]


def published_rows(s: Study) -> pd.DataFrame:
    """Every published row of a descendant (shared/reference/published.csv and the cited rows added to its copy),
    beside our net of the same family: never comparable here (other sizes, budgets and data)."""
    pub = s.pub[s.pub.model.isin(DESCENDANTS) & (s.pub.metric == "test_error_pct")]
    fam = s.agg.drop_duplicates("family").set_index("family")
    rows = []
    for _, p in pub.iterrows():
        mine = fam.loc[p.model] if p.model in fam.index else None
        size = block._published_params(p.note) or "size as noted"
        reasons = [f"published {size}, ours {mine.params:,} parameters"] if mine is not None else []
        reasons += [s.why_not] if s.why_not else []
        rows.append(
            {
                "published net": f"{p.model}-{p.depth} ({p.variant})",
                "source": published.cite(p),
                "published test err %": p.value,
                "our net": mine.label if mine is not None else "-",
                "ours test err % (mean ± sd)": pm(mine.test_error_mean, mine.test_error_std, mine.n_seeds)
                if mine is not None
                else "-",
                "comparable?": "no: " + "; ".join(reasons) if mine is not None else "-",
            }
        )
    return pd.DataFrame(rows)


def published_section(s: Study) -> list[str]:
    rows = published_rows(s)
    return [
        "## Ours vs published",
        "",
        "Each row's source is in the row; what was checked (parameter counts pinned against public implementations) "
        "is in its note. No delta is computed: the papers' nets are far larger (each row gives both sizes) and "
        "trained to convergence.",
        "",
        markdown.table(rows) if len(rows) else "_No published rows._",
        "",
        "Per-seed results: [runs.csv](runs.csv); contrasts with every statistic: [contrasts.csv](contrasts.csv); "
        "McNemar per seed: [mcnemar.csv](mcnemar.csv); per-net aggregates with cost: [results.csv](results.csv)"
        + ("; cost per repeat: [cost.csv](cost.csv)" if s.cost is not None else "")
        + f". Per-run outputs are under `runs/{s.study}/{s.profile}/`.",
    ]
