"""reports/shortcut/: is the shortcut effective, and which shortcut? From runs/<study>/<profile>/.

The decision rule is experiments/shortcut.md (plan of 2026-11-25, amended 2026-12-03): paired tests over seeds,
Holm within each family for a difference and for 'no practical difference' alike, a practical threshold, and the
seeds the rule needs (reslab.report.power) to decide what stays inconclusive."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from reslab import io
from reslab.probes import signal as sig
from reslab.report import flow, markdown, paired, plots, power, published, skeleton, templates
from reslab.report.results import load_csvs, load_results
from reslab.report.stats import CHANCE, mean_std, pm

BASELINE = "identity-A"
VARIANTS = [
    "plain",
    "identity-A",
    "projection-B",
    "projection-C",
    "scale-shortcut-0.5",
    "scale-both-0.5",
    "gate-exclusive-b0",
    "gate-exclusive-b-6",
    "gate-shortcut-b0",
    "gate-shortcut-b-6",
    "dropout-0.5",
    "bn-after-add",
    "relu-before-add",
    "relu-preact",
    "preact",
]
TABLE1 = [
    "projection-C",
    "scale-shortcut-0.5",
    "scale-both-0.5",
    "gate-exclusive-b0",
    "gate-exclusive-b-6",
    "gate-shortcut-b0",
    "gate-shortcut-b-6",
    "dropout-0.5",
]
ORIGINAL = "original"  # the published row every Identity Mappings variant is compared with
DEPART_PP = 10.0  # an effect this large where the paper's is under PAPER_MODEST_PP departs from it
PAPER_MODEST_PP = 5.0  # the paper trained it to within 5 pp of the original
MODE_GAP_PP = 5.0  # train-mode minus eval-mode training error, this far from identity-A's, needs explaining
TABLES = {("He2016-ResNet", "Table 3"), ("He2016-Identity", "Table 1"), ("He2016-Identity", "Table 2")}

# What checks each variant's wiring against the paper's figure (tests/test_models.py), for the diagnosis.
IMPLEMENTATION_CHECKS = {
    "relu-before-add": "test_relu_before_addition_makes_every_residual_non_negative_so_the_signal_only_grows "
    "(Fig. 4c: the residual ends in BN-ReLU, nothing after the addition)",
    "dropout-0.5": "test_dropout_shortcut_imposes_the_papers_expected_scale_of_one_half_in_train_and_test "
    "(section 3.1: an expected scale of 0.5 on the shortcut)",
    "gate-exclusive-b-6": "test_exclusive_gate_at_minus_6_starts_close_to_the_identity",
    "gate-exclusive-b0": "test_gate_bias_starts_at_the_configured_b_g",
    "gate-shortcut-b0": "test_gate_bias_starts_at_the_configured_b_g",
    "gate-shortcut-b-6": "test_gate_bias_starts_at_the_configured_b_g",
}
# The first (quick-profile) study's unexplained outliers (issue 10): always diagnosed, whether or not they
# still depart, so the report says what became of them.
FLAGGED_EARLIER = {
    "relu-before-add": "83% training error in the first (quick-profile, lr 0.1, 1,000 test images) study",
    "dropout-0.5": "89.5% test error against 79.3% training error in the first (quick-profile) study",
}
# Defects found in an earlier study and corrected in the code before this one ran (with the evidence).
CORRECTED = {
    "dropout-0.5": "the first (quick-profile) study used PyTorch's inverted dropout, which keeps the shortcut's "
    "expected scale at 1 (x2 or 0 in training, x1 at test), not the paper's 0.5; corrected on "
    "2026-11-25 (reslab.models.layers.ShortcutDropout: keep with p = 0.5, no rescaling in training, "
    "x0.5 at test), before this study's pilot",
}


def contrasts(df: pd.DataFrame, main: int, deep: int | None) -> tuple[list[paired.Paired], list[paired.Paired]]:
    """(primary, secondary) contrasts of experiments/shortcut.md, decided with Holm within each family.
    Every contrast is 'worse - better' in the direction the papers predict."""
    have = set(df.label)
    lab = lambda v, d: f"{v}-{d}"  # noqa: E731
    primary = []
    if {lab("plain", main), lab(BASELINE, main)} <= have:
        primary.append(
            paired.paired(
                "H1",
                "train_error",
                lab("plain", main),
                lab(BASELINE, main),
                skeleton.values(df, lab("plain", main), "train_error"),
                skeleton.values(df, lab(BASELINE, main), "train_error"),
            )
        )
    h3 = deep if deep is not None else main
    if {lab("preact", h3), lab(BASELINE, h3)} <= have:
        primary.append(
            paired.paired(
                "H3",
                "test_error",
                lab(BASELINE, h3),
                lab("preact", h3),
                skeleton.values(df, lab(BASELINE, h3), "test_error"),
                skeleton.values(df, lab("preact", h3), "test_error"),
            )
        )
    secondary = []
    for v in VARIANTS:
        if v in ("plain", BASELINE) or lab(v, main) not in have or lab(BASELINE, main) not in have:
            continue
        if v == "preact":  # predicted better than the identity: the contrast is identity - preact
            c = paired.paired(
                f"H3 at depth {main}",
                "test_error",
                lab(BASELINE, main),
                lab(v, main),
                skeleton.values(df, lab(BASELINE, main), "test_error"),
                skeleton.values(df, lab(v, main), "test_error"),
            )
        else:
            c = paired.paired(
                v,
                "test_error",
                lab(v, main),
                lab(BASELINE, main),
                skeleton.values(df, lab(v, main), "test_error"),
                skeleton.values(df, lab(BASELINE, main), "test_error"),
            )
        secondary.append(c)
    if deep is not None and {lab("plain", deep), lab(BASELINE, deep)} <= have:
        secondary.append(
            paired.paired(
                f"H1 at depth {deep}",
                "train_error",
                lab("plain", deep),
                lab(BASELINE, deep),
                skeleton.values(df, lab("plain", deep), "train_error"),
                skeleton.values(df, lab(BASELINE, deep), "train_error"),
            )
        )
    # The rule per family, McNemar per seed (secondary), and the seeds the rule needs for an undecided contrast.
    skeleton.decide({"primary": primary, "per-variant": secondary}, df)
    return primary, secondary


def primary_lines(primary: list[paired.Paired], main: int, deep: int | None) -> list[str]:
    words = {
        "H1": f"**H1: a shortcut beats none** (plain − identity-A, training error, depth {main})",
        "H3": f"**H3: full pre-activation beats post-activation** (identity-A − preact, test error, depth "
        f"{deep if deep is not None else main})",
    }
    lines = []
    for c in primary:
        lines.append(
            f"- {words.get(c.name, c.name)}: {c.mean:+.2f} pp over {c.n} paired seeds, 95% CI {skeleton.ci_text(c)}, "
            f"paired t p = {skeleton.p_text(c.p)}, Holm-adjusted p = {skeleton.p_text(c.p_adj)}, equivalence "
            f"(TOST ±{paired.PRACTICAL_PP:g} pp) Holm-adjusted p = {skeleton.p_text(c.p_equiv_adj)} → "
            f"**{c.verdict}**{skeleton.undecided_text(c, 'variant')}."
        )
    return lines


# Studies that confirm the primary family on seeds of their own (experiments/shortcut.md, amendment of 2026-12-03):
# the plan section they follow, and the effects their seeds were sized for (stated there, before any run).
CONFIRMATIONS = {
    "shortcut-confirm": (
        "amendment of 2026-12-03, 'H1 and H3 confirmed on fresh seeds' (fixed before any run of it; analysed alone)",
        (2.0, 4.0, 5.0),
        3.6,
    )
}


def power_lines(primary: list[paired.Paired], effects: tuple, design_sd: float) -> list[str]:
    """The rule's power for the seeds run (reslab.report.power: the whole rule simulated, at the family's strictest
    Holm level), at the effects the plan stated, for the plan's sd and for each contrast's observed sd."""
    m = max(1, len(primary))
    lines = [
        f"Power of the whole rule ('supported': Holm level alpha/{m}, mean at least {paired.PRACTICAL_PP:g} pp) "
        "for the seeds run, at the effects the plan stated before the runs (reslab.report.power):",
        "",
    ]
    rows = []
    for c in primary:
        for sd, what in ((design_sd, "plan's sd"), (c.sd, "observed sd")):
            if c.n < 2 or not (np.isfinite(sd) and sd > 0):
                continue
            rows.append(
                {
                    "contrast": c.name,
                    "seeds": c.n,
                    "sd (pp)": f"{sd:.2f} ({what})",
                    **{f"true {e:g} pp": f"{power.rule_power(e, sd, c.n, m):.2f}" for e in effects},
                }
            )
    return lines + [markdown.table(pd.DataFrame(rows)) if rows else "_No contrast has two seeds._", ""]


def _direction(c: paired.Paired) -> str:
    return {
        "supported": f"{c.worse.rsplit('-', 1)[0]} worse" if not c.name.startswith("H3") else "preact better",
        "contradicted": f"{c.worse.rsplit('-', 1)[0]} better" if not c.name.startswith("H3") else "preact worse",
    }.get(c.verdict, c.verdict)


def _name(c: paired.Paired) -> str:
    return c.name if c.name.startswith("H") else f"{c.worse} − {c.better}"


def secondary_table(secondary: list[paired.Paired], agg: pd.DataFrame, pub: pd.DataFrame) -> pd.DataFrame:
    rows = []
    cfg_rows = pub[(pub.source == "He2016-Identity") & (pub.depth == "110") & (pub.model == "resnet")]
    orig = cfg_rows[cfg_rows.variant == ORIGINAL]
    base = published.as_float(orig.value.iloc[0]) if len(orig) else None
    published_by = {r.variant: r.value for r in cfg_rows.itertuples()}
    names = dict(zip(agg.label, agg.published))
    for c in secondary:
        pubs = names.get(c.worse if not c.name.startswith("H3") else c.better) or []
        pv = next((published_by[p] for p in pubs if p in published_by), None)
        if pv is None:
            paper = "-"
        elif pv == "fail":
            paper = "fail (> 20%)"
        else:
            v = published.as_float(pv)
            paper = f"{v - base:+.2f} vs original" if v is not None and base is not None else str(pv)
        rows.append(
            {
                "contrast": _name(c),
                "metric": c.metric.replace("_", " "),
                "seeds": c.n,
                "mean diff (pp)": f"{c.mean:+.2f}",
                "95% CI": skeleton.ci_text(c),
                "paired p": skeleton.p_text(c.p),
                "Holm p": skeleton.p_text(c.p_adj),
                "equivalence Holm p": skeleton.p_text(c.p_equiv_adj),
                "verdict": _direction(c),
                skeleton.SEEDS_COLUMN: skeleton.seeds_cell(c),
                "paper (ResNet-110)": paper,
            }
        )
    return pd.DataFrame(rows)


def h2_line(secondary: list[paired.Paired]) -> str:
    t1 = [c for c in secondary if c.name in TABLE1]
    if not t1:
        return ""
    worse = [c.name for c in t1 if c.verdict == "supported"]
    better = [c.name for c in t1 if c.verdict == "contradicted"]
    same = [c.name for c in t1 if c.verdict == "no practical difference"]
    open_ = [c.name for c in t1 if c.verdict == "inconclusive"]
    overall = (
        "supported"
        if len(worse) == len(t1)
        else "contradicted"
        if (better or same)
        else "partly supported"
        if worse
        else "inconclusive"
    )
    return (
        f"- **H2: the clean identity beats every modified shortcut of Identity Mappings Table 1** → **{overall}** "
        f"(Holm over the per-variant family): worse than the identity: {', '.join(worse) or 'none'}; better: "
        f"{', '.join(better) or 'none'}; no practical difference: {', '.join(same) or 'none'}; undecided: "
        f"{', '.join(open_) or 'none'}."
    )


def mode_gaps(df: pd.DataFrame) -> pd.Series:
    """Per label: final training error measured in train mode (running over the last epoch: BN batch
    statistics, dropout on) minus the curve probe's eval-mode error on fixed training images at the end,
    median over seeds. A large gap means the net behaves differently in the two modes."""
    curves = load_csvs(df, "curves.csv")
    if curves.empty:
        return pd.Series(dtype=float)
    last = curves[curves.step == curves.groupby(["label", "seed"]).step.transform("max")]
    ev = last.set_index(["label", "seed"]).train_error
    tr = df.set_index(["label", "seed"]).train_error.astype(float)
    return (tr - ev.reindex(tr.index)).groupby(level=0).median()


def init_forward(variant_signal: pd.DataFrame) -> pd.DataFrame:
    """Per variant and depth at init: forward growth (last / first block-output RMS) and the backward
    ratio with its reading, medians over init seeds."""
    if variant_signal.empty:
        return pd.DataFrame()
    out = []
    for (v, d, s), g in variant_signal.groupby(["variant", "depth", "init_seed"]):
        g = g.sort_values("block")
        out.append(
            {
                "variant": v,
                "depth": d,
                "seed": s,
                "forward_growth": g.act_rms.iloc[-1] / g.act_rms.iloc[0],
                **sig.summarise(g.grad_rms.to_numpy()),
            }
        )
    out = pd.DataFrame(out)
    agg = (
        out.groupby(["variant", "depth"])
        .agg(
            forward_growth=("forward_growth", "median"),
            ratio=("ratio", "median"),
            ratio_min=("ratio", "min"),
            ratio_max=("ratio", "max"),
            slope=("slope", "median"),
            n=("seed", "count"),
        )
        .reset_index()
    )
    agg["reading"] = agg.ratio.map(sig.reading)
    return agg


def outliers(
    secondary: list[paired.Paired], agg: pd.DataFrame, pub: pd.DataFrame, gaps: pd.Series, init: pd.DataFrame, main: int
) -> list[str]:
    """A diagnosis line for every variant that departs strongly from the paper's ordering (the plan's
    criteria): a decided effect against the paper's direction, an effect of DEPART_PP or more where the
    paper's is under PAPER_MODEST_PP, a run that diverged where the paper's did not fail, or a
    train-mode/eval-mode gap of MODE_GAP_PP or more."""
    cfg_rows = pub[(pub.source == "He2016-Identity") & (pub.depth == "110") & (pub.model == "resnet")]
    published_by = {r.variant: r.value for r in cfg_rows.itertuples()}
    base = published.as_float(published_by.get(ORIGINAL))
    pubs = dict(zip(agg.label, agg.published))
    diverged = dict(zip(agg.label, agg.diverged))
    base_gap = gaps.get(f"{BASELINE}-{main}", math.nan)
    lines = []
    for c in secondary:
        if c.name.startswith("H"):
            continue
        label = c.worse
        pv = next((published_by[p] for p in (pubs.get(label) or []) if p in published_by), None)
        pdelta = None if pv in (None, "fail") else (published.as_float(pv) - base if base is not None else None)
        reasons = []
        if c.verdict == "contradicted" and (pv == "fail" or (pdelta is not None and pdelta > 0)):
            reasons.append("better than the identity here, worse in the paper")
        if c.verdict == "supported" and pdelta is not None and pdelta < 0:
            reasons.append("worse than the identity here, better in the paper")
        if np.isfinite(c.mean) and c.mean >= DEPART_PP and pdelta is not None and abs(pdelta) < PAPER_MODEST_PP:
            reasons.append(f"{c.mean:+.1f} pp here against {pdelta:+.2f} pp in the paper")
        if diverged.get(label, 0) and pv != "fail":
            reasons.append("diverged here, trained in the paper")
        gap = gaps.get(label, math.nan)
        # Augmentation, the epoch's running average and 256 probe images make every net's gap non-zero;
        # what needs explaining is a gap unlike the clean identity's.
        if np.isfinite(gap) and np.isfinite(base_gap) and abs(gap - base_gap) >= MODE_GAP_PP:
            reasons.append(
                f"train-mode minus eval-mode training error {gap:+.1f} pp against identity-A's {base_gap:+.1f} pp"
            )
        v = label.rsplit("-", 1)[0]
        if v in FLAGGED_EARLIER:
            reasons.append(
                f"flagged earlier: {FLAGGED_EARLIER[v]}; here {c.mean:+.1f} pp test error against identity-A"
            )
        if not reasons:
            continue
        facts = []
        ini = init[(init.variant == v) & (init.depth == main)] if not init.empty else init
        ref = init[(init.variant == BASELINE) & (init.depth == main)] if not init.empty else init
        if len(ini) and len(ref):
            r, b = ini.iloc[0], ref.iloc[0]
            facts.append(
                f"at init the forward signal grows x{r.forward_growth:.3g} from the first to the last block "
                f"(identity-A x{b.forward_growth:.3g}) and the backward ratio is {r.ratio:.3g} "
                f"({r.reading}; identity-A {b.ratio:.3g})"
            )
        if np.isfinite(gap):
            facts.append(f"train-mode minus eval-mode training error {gap:+.1f} pp (identity-A {base_gap:+.1f} pp)")
        if v in IMPLEMENTATION_CHECKS:
            facts.append(f"wiring checked against the paper by `{IMPLEMENTATION_CHECKS[v]}`")
        status = (
            f"**a corrected defect**: {CORRECTED[v]}; the numbers here are from the corrected code, so what "
            "remains is a finding of this profile"
            if v in CORRECTED
            else "**a finding of this profile**, not a defect: the wiring matches the paper's figure"
        )
        lines.append(
            f"- **{label}** ({'; '.join(reasons)}). Evidence: {'; '.join(facts) or 'none recorded'}. "
            f"Diagnosis: {status}."
        )
    return lines or ["- No variant departs from the paper's ordering by the plan's criteria."]


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for label, g in df.groupby("label", sort=False):
        base = df[(df.variant_name == BASELINE) & (df.depth == g.depth.iloc[0])].params
        tr, tr_sd, n = mean_std(list(skeleton.values(df, label, "train_error").values()))
        te, te_sd, _ = mean_std(list(skeleton.values(df, label, "test_error").values()))
        v = g.variant.iloc[0]
        rows.append(
            {
                "label": label,
                "variant_name": g.variant_name.iloc[0],
                "depth": int(g.depth.iloc[0]),
                "group": v["group"],
                "description": v["description"],
                "published": list(v.get("published") or []),
                "n_seeds": len(g),
                "diverged": int((g.status != "ok").sum()),
                "train_error_mean": tr,
                "train_error_std": tr_sd,
                "test_error_mean": te,
                "test_error_std": te_sd,
                "params": int(g.params.iloc[0]),
                "extra_params": int(g.params.iloc[0]) - int(base.iloc[0]) if len(base) else None,
                "flops": int(g.flops.iloc[0]),
                "images_per_second": float(g.images_per_second.mean()),
            }
        )
    return pd.DataFrame(rows)


def published_rows(agg: pd.DataFrame, pub: pd.DataFrame, why_not: str | None) -> pd.DataFrame:
    pub = pub[[(s, t) in TABLES for s, t in zip(pub.source, pub.table)]]
    rows = []
    for _, p in pub.iterrows():
        ours = agg[[p.variant in v for v in agg.published]]
        ours = ours[(ours.variant_name == "plain") == (p.model == "plain")] if len(ours) else ours
        for _, mine in ours.iterrows() if len(ours) else [(None, None)]:
            reasons = []
            if p.dataset != "CIFAR-10":
                reasons.append(f"published on {p.dataset}")
            if mine is not None and p.depth != str(mine.depth):
                reasons.append(f"published at depth {p.depth}, ours {mine.depth}")
            if why_not:
                reasons.append(why_not)
            rows.append(
                {
                    "published row": f"{p.model}-{p.depth} {p.variant}",
                    "source": published.cite(p),
                    "published": p.value + (" (fail = > 20% error)" if p.value == "fail" else ""),
                    "our run": mine.label if mine is not None else "-",
                    "ours test err % (mean ± sd)": pm(mine.test_error_mean, mine.test_error_std, mine.n_seeds)
                    if mine is not None
                    else "-",
                    "comparable?": "no: " + "; ".join(reasons) if reasons else "yes",
                }
            )
    return pd.DataFrame(rows)


def signal_lines(init: pd.DataFrame, df: pd.DataFrame, out: Path, order: list) -> list[str]:
    """Issue 9 for the variants: vanishing / exploding / neither at init and during training."""
    lines = []
    if init.empty:
        lines.append(
            "_The variants' backward signal at initialisation is not measured yet: `make grad-flow DATA=...` "
            "writes `runs/gradflow/signal_variants.csv`._"
        )
    else:
        lines += [
            f"**At initialisation** (statistic, batches and band as in the depth report: RMS of dL/dh per block "
            f"output, ratio = input side / output side, *vanishing* below 1/{sig.BAND:g}, *exploding* above "
            f"{sig.BAND:g}; median [min, max] over {int(init.n.max())} init seeds; forward growth = RMS of the "
            "last block's output / the first's).",
            "",
            "| variant | depth | backward ratio | slope (decades) | reading | forward growth |",
            "|---|---|---|---|---|---|",
        ]
        rank = {v: i for i, v in enumerate(VARIANTS)}
        for _, r in init.sort_values(
            ["depth", "variant"], key=lambda s: s.map(rank) if s.name == "variant" else s
        ).iterrows():
            lines.append(
                f"| {r.variant} | {int(r.depth)} | {flow.fmt_ratio(r.ratio, r.ratio_min, r.ratio_max)} | "
                f"{r.slope:+.2f} | {r.reading} | x{r.forward_growth:.3g} |"
            )
    sig_rows = load_csvs(df, "signal.csv")
    upd = load_csvs(df, "updates.csv")
    if not sig_rows.empty:
        sig_rows["family"], sig_rows["depth"] = sig_rows.label.str.rsplit("-", n=1).str[0], sig_rows.depth
        if not upd.empty:
            upd["family"] = upd.label.str.rsplit("-", n=1).str[0]
        keep = {"plain", BASELINE, "preact", "scale-shortcut-0.5", "relu-before-add", "dropout-0.5"}
        tlines, _ = flow.training_signal_section(sig_rows, upd[upd.family.isin(keep)] if not upd.empty else upd, out)
        lines += ["", "**During training** (every run, every seed):", "", *tlines]
    else:
        lines += ["", "_The runs recorded no training-time backward signal (probes.flow_points was off)._"]
    return lines


def load(runs: Path, study: str, profile: str) -> pd.DataFrame:
    """Finished runs labelled <variant>-<depth>, in the study's order: by depth, then as in VARIANTS."""
    df = load_results(runs, study, profile)
    df["variant_name"] = [v["name"] for v in df.variant]
    df["label"] = [f"{v}-{d}" for v, d in zip(df.variant_name, df.depth)]
    depths = sorted(df.depth.unique())
    order = [f"{v}-{d}" for d in depths for v in VARIANTS if f"{v}-{d}" in set(df.label)]
    order += sorted(set(df.label) - set(order))
    df["label"] = pd.Categorical(df.label, order, ordered=True)
    df = df.sort_values(["label", "seed"])
    df["label"] = df.label.astype(str)
    return df


def label_colors(order: list[str]) -> dict:
    """A variant's colour, the same at every depth and in every figure."""
    colors = plots.fixed_colors(VARIANTS)
    return {l: colors.get(l.rsplit("-", 1)[0], "black") for l in order}


def curve_panels(agg: pd.DataFrame, depths: list[int]) -> dict[str, list[str]]:
    """The learning-curve panels: one per group of variants and depth, each with identity-A beside them."""
    groups = {}
    for l, g in zip(agg.label, agg.group):
        groups.setdefault(g, []).append(l)
    panels = {}
    for d in depths:
        for g in ("shortcut type", "shortcut modification", "activation placement"):
            labels = [l for l in groups.get(g, []) if l.endswith(f"-{d}")]
            if labels:
                base = f"{BASELINE}-{d}"
                panels[f"{g}, depth {d}"] = ([base] if base not in labels else []) + labels
    # A panel holding only the baseline says nothing; eight modifications need two panels to stay readable.
    ordered = {}
    for name, labels in panels.items():
        if len(labels) < 2:
            continue
        if len(labels) > 6:
            half = 1 + (len(labels) - 1) // 2
            ordered[name] = labels[:half]
            ordered[name.replace(",", " (cont.),", 1)] = [labels[0]] + labels[half:]
        else:
            ordered[name] = labels
    return ordered


@dataclass
class Study:
    """What the report says, computed once from the runs (and `make grad-flow`'s per-variant file, if there)."""

    study: str
    profile: str
    df: pd.DataFrame
    depths: list
    main: int
    deep: int | None
    order: list
    agg: pd.DataFrame
    pub: pd.DataFrame
    why_not: str | None
    primary: list
    secondary: list
    sec: pd.DataFrame
    gaps: dict
    init: pd.DataFrame
    curves: pd.DataFrame
    colors: dict


def build(runs: Path, reports: Path, profile: str, study: str = "shortcut") -> Path:
    out = Path(reports) / study
    s = compute(runs, profile, study, out)
    figures(s, out)
    lines = [
        *header_section(s),
        *verdicts_section(s),
        *variants_section(s, out),
        *outliers_section(s),
        *published_section(s),
        *gradient_flow_section(s, out),
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"


RUN_COLUMNS = [
    "label",
    "variant_name",
    "depth",
    "seed",
    "status",
    "train_error",
    "test_error",
    "train_loss",
    "test_loss",
    "steps",
    "params",
    "wall_seconds",
    "git_commit",
    "numerics",
]


def compute(runs: Path, profile: str, study: str, out: Path) -> Study:
    df = load(runs, study, profile)
    out.mkdir(parents=True, exist_ok=True)  # after the runs passed their checks: a refused report writes nothing
    depths = sorted(df.depth.unique())
    main, deep = int(depths[0]), (int(depths[-1]) if len(depths) > 1 else None)
    order = list(dict.fromkeys(df.label))
    agg = aggregate(df)
    skeleton.write_csv(agg, out / "results.csv")
    skeleton.write_csv(df[RUN_COLUMNS], out / "runs.csv")
    pub = published.load()
    why_not = published.comparability(profile, df.data_checksum.iloc[0], df.data_format.iloc[0])
    primary, secondary = contrasts(df, main, deep)
    sec = secondary_table(secondary, agg, pub)
    skeleton.write_csv(skeleton.contrasts_frame(primary + secondary), out / "contrasts.csv")
    skeleton.write_csv(skeleton.mcnemar_frame(primary + secondary), out / "mcnemar.csv")
    vsig_path = Path(runs) / "gradflow" / "signal_variants.csv"
    init = init_forward(pd.read_csv(vsig_path)) if vsig_path.is_file() else pd.DataFrame()
    return Study(
        study=study,
        profile=profile,
        df=df,
        depths=depths,
        main=main,
        deep=deep,
        order=order,
        agg=agg,
        pub=pub,
        why_not=why_not,
        primary=primary,
        secondary=secondary,
        sec=sec,
        gaps=mode_gaps(df),
        init=init,
        curves=load_csvs(df, "curves.csv"),
        colors=label_colors(order),
    )


def figures(s: Study, out: Path) -> None:
    profile, df, primary, secondary = s.profile, s.df, s.primary, s.secondary
    plots.paired_differences(
        {"primary": primary, "per-variant": secondary},
        out / "paired_differences.png",
        paired.PRACTICAL_PP,
        f"profile {profile}: every contrast as tested, paired over seeds",
        names={
            c.name: (f"{c.name}: " if c.name.startswith("H") else "") + f"{c.worse} − {c.better}"
            for c in primary + secondary
        },
    )
    plots.variant_errors(
        df, s.order, s.colors, out / "errors.png", f"profile {profile}: final error per run and variant"
    )
    if not s.curves.empty:
        drops = [int(x) for x in df.lr_drop_steps.iloc[0]] if "lr_drop_steps" in df else []
        plots.variant_curves(
            s.curves,
            curve_panels(s.agg, s.depths),
            s.colors,
            out / "curves.png",
            drops,
            f"profile {profile}: curve-probe error, mean over seeds (band: min-max)",
        )


def header_section(s: Study) -> list[str]:
    banner = skeleton.cpu_banner(
        s.profile,
        f"Depth {', '.join(map(str, s.depths))}. Identity Mappings Tables 1 and 2 use "
        "ResNet-110 trained for 64k iterations; here every variant trains briefly on a subset, "
        "so compare variants with each other, not with the paper's numbers.",
    )
    confirmation = s.study in CONFIRMATIONS
    title = "Is the shortcut effective, and which shortcut?" + (
        " Fresh-seed confirmation of H1 and H3" if confirmation else ""
    )
    plan = "[experiments/shortcut.md](../../experiments/shortcut.md), " + (
        CONFIRMATIONS[s.study][0] if confirmation else "plan of 2026-11-25 (fixed before the confirmatory run)"
    )
    return [*skeleton.header(title, s.df, s.study, plan, banner), *skeleton.sweep_lines(s.df), ""]


def verdicts_section(s: Study) -> list[str]:
    primary, secondary = s.primary, s.secondary
    mcn = skeleton.mcnemar_lines(primary + secondary, _name)
    return [
        "## Verdicts (computed by the decision rule)",
        "",
        skeleton.rule_text("Primary family: H1 and H3."),
        "",
        *primary_lines(primary, s.main, s.deep),
        h2_line(secondary),
        skeleton.design_line({"primary": primary, "per-variant": secondary}),
        "",
        *(power_lines(primary, *CONFIRMATIONS[s.study][1:]) if s.study in CONFIRMATIONS else []),
        "### Every variant against the clean identity (per-variant family, Holm)",
        "",
        templates.fill("shortcut/per_variant.md"),
        "",
        markdown.table(s.sec) if len(s.sec) else "_No contrasts._",
        "",
        "![paired differences](paired_differences.png)",
        "",
        plots.paired_caption(paired.PRACTICAL_PP, "the papers"),
        "",
        *(["#### McNemar per seed (secondary)", "", *mcn, ""] if mcn else []),
    ]


def variants_section(s: Study, out: Path) -> list[str]:
    agg, gaps = s.agg, s.gaps
    table = pd.DataFrame(
        {
            "variant": agg.label,
            "what": agg.description,
            "train err % (mean ± sd)": [
                pm(m, sd, n) for m, sd, n in zip(agg.train_error_mean, agg.train_error_std, agg.n_seeds)
            ],
            "test err % (mean ± sd)": [
                pm(m, sd, n) for m, sd, n in zip(agg.test_error_mean, agg.test_error_std, agg.n_seeds)
            ],
            "train-mode − eval-mode train err (pp)": [f"{gaps.get(l, math.nan):+.1f}" for l in agg.label],
            "seeds": agg.n_seeds,
            "diverged": agg.diverged,
            "params": agg.params.map("{:,}".format),
            "shortcut params (vs identity)": agg.extra_params.map(
                lambda v: f"{v:+,}" if v is not None and not pd.isna(v) else "-"
            ),
        }
    )
    lines = [
        "## Results per variant",
        "",
        templates.fill("shortcut/results.md", chance=f"{CHANCE:.0f}"),
        "",
        markdown.table(table),
        "",
        templates.fill("shortcut/errors_figure.md"),
        "",
    ]
    if (out / "curves.png").is_file() and not s.curves.empty:
        lines += [templates.fill("shortcut/curves_figure.md"), ""]
    return lines


GATE_CLOSED = -3.0  # an exclusive gate whose bias starts at or below this passes sigmoid(b) <= 5% of its branch


def gate_budget_lines(df: pd.DataFrame, secondary: list[paired.Paired]) -> list[str]:
    """Issue 24 (5): an exclusive gate that starts nearly closed throttles every residual branch by sigmoid(b_g)
    (and the shortcut by 1 - sigmoid(b_g)), so a short budget may end before the gates open. The budget ladder trains
    no gated net: the line says what is measured (the start, from the run's own config) and what would decide it."""
    lines = []
    for c in secondary:
        rows = df[df.label == c.worse]
        if c.name.startswith("H") or rows.empty:
            continue
        f = Path(rows.run_dir.iloc[0]) / "config.yaml"
        model = (yaml.safe_load(f.read_text()) or {}).get("model") or {} if f.is_file() else {}
        if model.get("gate") != "exclusive" or model.get("gate_bias") is None:
            continue
        bias = float(model["gate_bias"])
        if bias > GATE_CLOSED:
            continue
        steps = int(rows.steps_planned.max())
        lines.append(
            f"- **Budget reading (issue 24), {c.worse}:** its exclusive gates start at sigmoid({bias:g}) = "
            f"{1 / (1 + math.exp(-bias)):.4f} of each residual branch (b_g from the run's config), so the net starts "
            f"as a near-identity and has {steps:,} iterations to open them; of its {c.mean:+.2f} pp against "
            f"{c.better}, the share that is this short budget is not measured: the budget ladder trains no gated "
            f"net. What would decide it: {c.worse} and {c.better} at the ladder's top rung (6,400 iterations)."
        )
    return lines


def outliers_section(s: Study) -> list[str]:
    criteria = templates.fill(
        "shortcut/outliers.md",
        depart=f"{DEPART_PP:g}",
        modest=f"{PAPER_MODEST_PP:g}",
        gap=f"{MODE_GAP_PP:g}",
    )
    return [
        "## Outliers diagnosed",
        "",
        criteria,
        "",
        *outliers(s.secondary, s.agg, s.pub, s.gaps, s.init, s.main),
        *gate_budget_lines(s.df, s.secondary),
        "",
    ]


def published_section(s: Study) -> list[str]:
    return [
        "## Ours vs published",
        "",
        "Every row of ResNet Table 3 and Identity Mappings Tables 1 and 2 in `shared/reference/published.csv`, beside "
        "our runs of the matching variant.",
        "",
        markdown.table(published_rows(s.agg, s.pub, s.why_not)),
        "",
    ]


def gradient_flow_section(s: Study, out: Path) -> list[str]:
    resp = load_csvs(s.df, "responses.csv")
    fig7 = [f"{v}-{s.main}" for v in ("plain", BASELINE, "preact", "scale-shortcut-0.5")]
    return [
        "## Gradient flow per variant: vanishing, exploding or neither",
        "",
        *signal_lines(s.init, s.df, out, s.order),
        "",
        "### Layer responses",
        "",
        *flow.response_section(resp, fig7, out, "responses.png"),
        "",
        "Per-seed results: [runs.csv](runs.csv); contrasts with every statistic: [contrasts.csv](contrasts.csv); "
        "McNemar per seed: [mcnemar.csv](mcnemar.csv); "
        f"aggregates: [results.csv](results.csv). Per-run outputs are under `runs/{s.study}/{s.profile}/`.",
    ]
