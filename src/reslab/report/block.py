"""reports/block/: the residual block vs DenseNet and VoVNet at matched parameter budgets, from
runs/<study>/<profile>/ (the trained nets) and its cost.csv (reslab-cost: throughput and memory, measured
after the sweep).

Decision rule: experiments/block.md (plan draft of 2026-11-25, amended 2026-12-03): paired tests over seeds
(reslab.report.paired), Holm within each family for both a difference and 'no practical difference', a 2 pp
practical threshold and the seeds the rule needs to decide what stays open (reslab.report.power); cost ratios
against a 10% practical threshold over interleaved repeats; FLOPs (of convolutions and matrix products only) and
parameters are exact counts. Claim (a)'s headline states the measured training speed and peak memory beside the
counts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reslab import io
from reslab.models.budget import TOLERANCE, parse_budget
from reslab.report import flow, markdown, paired, plots, published, skeleton, templates, trend
from reslab.report.results import load_csvs, load_results
from reslab.report.stats import mean_std, pm
from reslab.run import sweep

FAMILIES = ["resnet", "preact", "bottleneck", "densenet-bc", "vovnet", "vovnet-v2"]  # fixed colours, table order
RESNET, DENSENET, VOVNET, VOVNET2 = "resnet", "densenet-bc", "vovnet", "vovnet-v2"
SPEED_RATIO = 1.10  # faster / slower: at least 10% more / fewer images per second in every repeat
MEMORY_RATIO = 0.90  # lighter / heavier: at most 90% / at least 1/0.9 of the peak training-step memory
OFF_BUDGET = "off-budget"
MARKERS = ["o", "s", "^", "D", "v", "P"]
PLAN = (
    "[experiments/block.md](../../experiments/block.md), plan of 2026-11-25 "
    "(two arms and seeds: 2026-11-30, before the confirmatory run)"
)

# What each claim's paired verdict means when the claim predicts "at least as good", not "better".
AS_GOOD = {
    "supported": "worse: the claim fails",
    "no practical difference": "as good: the claim holds",
    "contradicted": "better: the claim holds",
    "inconclusive": "open",
}


# Runs -> nets.


def nearest_budget(params: float, budgets: dict[str, float]) -> str:
    """The study budget a net's parameter count falls in (within the matcher's tolerance), else off-budget."""
    fits = [(abs(params / v - 1), name) for name, v in budgets.items() if abs(params / v - 1) <= TOLERANCE]
    return min(fits)[1] if fits else OFF_BUDGET


def load(runs: Path, study: str, profile: str) -> pd.DataFrame:
    """Finished runs with the net's family and budget: from the block entry (conf/block/) the run was
    trained with, or for any other net (e.g. your own block) from its parameter count."""
    df = load_results(runs, study, profile)
    entries = [v if isinstance(v, dict) else {} for v in (df["variant"] if "variant" in df else [None] * len(df))]
    budgets = {e["budget"]: parse_budget(e["budget"]) for e in entries if e.get("budget")}
    df["family"] = [e.get("family") or f for e, f in zip(entries, df.family)]
    df["budget"] = [e.get("budget") or nearest_budget(p, budgets) for e, p in zip(entries, df.params)]
    df["budget_params"] = df.budget.map(lambda b: parse_budget(b) if b != OFF_BUDGET else math.inf)
    rank = {f: i for i, f in enumerate(FAMILIES)}
    df["family_rank"] = df.family.map(lambda f: rank.get(f, len(rank)))
    return df.sort_values(["budget_params", "family_rank", "family", "label", "seed"]).reset_index(drop=True)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for label, g in df.groupby("label", sort=False):
        tr, tr_sd, n = mean_std(list(skeleton.values(df, label, "train_error").values()))
        te, te_sd, _ = mean_std(list(skeleton.values(df, label, "test_error").values()))
        rows.append(
            {
                "label": label,
                "family": g.family.iloc[0],
                "budget": g.budget.iloc[0],
                "depth": int(g.depth.iloc[0]),
                "params": int(g.params.iloc[0]),
                "flops": int(g.flops.iloc[0]),
                "n_seeds": len(g),
                "diverged": int((g.status != "ok").sum()),
                "train_error_mean": tr,
                "train_error_std": tr_sd,
                "test_error_mean": te,
                "test_error_std": te_sd,
                "wall_seconds_mean": float(g.wall_seconds.mean()),
            }
        )
    return pd.DataFrame(rows)


def load_cost(runs: Path, study: str, profile: str) -> pd.DataFrame | None:
    f = Path(runs) / study / profile / "cost.csv"
    return pd.read_csv(f) if f.is_file() else None


def cost_summary(cost: pd.DataFrame | None) -> pd.DataFrame:
    """Per net: median [min, max] of training and inference images/s over the repeats, and the memory."""
    cols = [
        "label",
        "train_ips",
        "train_ips_min",
        "train_ips_max",
        "infer_ips",
        "infer_ips_min",
        "infer_ips_max",
        "peak_memory_bytes",
        "repeats",
        *SHARE_GROUPS,
    ]
    if cost is None or cost.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "label" else float) for c in cols})
    g = cost.groupby("label")
    shares = {k: (g[k].median() if k in cost else g.repeat.first() * math.nan) for k in SHARE_GROUPS}  # once per net
    return pd.DataFrame(
        {
            "train_ips": g.train_images_per_s.median(),
            "train_ips_min": g.train_images_per_s.min(),
            "train_ips_max": g.train_images_per_s.max(),
            "infer_ips": g.infer_images_per_s.median(),
            "infer_ips_min": g.infer_images_per_s.min(),
            "infer_ips_max": g.infer_images_per_s.max(),
            "peak_memory_bytes": g.peak_memory_bytes.median(),
            "repeats": g.repeat.nunique(),
            **shares,
        }
    ).reset_index()[cols]


# Pareto fronts.


def pareto_front(
    points: pd.DataFrame, cost: str, higher_is_better: bool = False, error: str = "test_error_mean"
) -> list[str]:
    """Labels of the nets that no other net beats on both axes: error no higher and cost no worse, one of
    them strictly."""
    d = points[points[cost].notna() & np.isfinite(points[error].astype(float))]
    sign = -1.0 if higher_is_better else 1.0
    e, c = d[error].to_numpy(float), sign * d[cost].to_numpy(float)
    front = []
    for i, label in enumerate(d.label):
        beaten = ((e <= e[i]) & (c <= c[i]) & ((e < e[i]) | (c < c[i]))).any()
        if not beaten:
            front.append(label)
    return front


# Contrasts and claims.


def nets_by(agg: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(family, budget) -> the net's label; the study's own entry first where a family has two at a budget."""
    out: dict[tuple[str, str], str] = {}
    own = pd.Series(
        [l.startswith(f"{f}-{b}-") for l, f, b in zip(agg.label, agg.family, agg.budget)], index=agg.index
    )  # the nets named by a conf/block entry
    for _, r in pd.concat([agg[own], agg[~own]]).iterrows():
        out.setdefault((r.family, r.budget), r.label)
    return out


def budgets_of(agg: pd.DataFrame) -> list[str]:
    return sorted({b for b in agg.budget if b != OFF_BUDGET}, key=parse_budget)


def _contrast(df, name, worse, better, metric="test_error") -> paired.Paired:
    return paired.paired(
        name, metric, worse, better, skeleton.values(df, worse, metric), skeleton.values(df, better, metric)
    )


def contrasts(df: pd.DataFrame, agg: pd.DataFrame) -> dict[str, list[paired.Paired]]:
    """The plan's two families, each 'worse − better' on test error in the direction the claim or paper predicts:
    - claims (primary): A1 at each budget (ResNet − DenseNet-BC at equal weights), A2 (ResNet at the largest
      budget − DenseNet-BC at the smallest: fewer weights), B1 at each budget (VoVNet − DenseNet-BC);
    - per-block (secondary): pre-activation, bottleneck and VoVNetV2 against their references."""
    net, budgets = nets_by(agg), budgets_of(agg)
    claims, secondary = [], []
    for b in budgets:
        if (RESNET, b) in net and (DENSENET, b) in net:
            claims.append(_contrast(df, f"A1 at {b}", net[RESNET, b], net[DENSENET, b]))
    if len(budgets) > 1 and (RESNET, budgets[-1]) in net and (DENSENET, budgets[0]) in net:
        claims.append(_contrast(df, "A2", net[RESNET, budgets[-1]], net[DENSENET, budgets[0]]))
    for b in budgets:
        if (VOVNET, b) in net and (DENSENET, b) in net:
            claims.append(_contrast(df, f"B1 at {b}", net[VOVNET, b], net[DENSENET, b]))
    for b in budgets:
        for worse, better in ((RESNET, "preact"), (RESNET, "bottleneck"), (VOVNET, VOVNET2), (VOVNET2, DENSENET)):
            if (worse, b) in net and (better, b) in net:
                secondary.append(_contrast(df, f"{better} vs {worse} at {b}", net[worse, b], net[better, b]))
    families = {"claims": claims, "per-block": secondary}
    skeleton.decide(families, df)
    return families


def ratio_verdict(lo: float, hi: float, threshold: float, more: str, less: str) -> str:
    """A cost ratio (this net / reference) seen over repeats in [lo, hi]: `more` if every repeat is at least
    `threshold`, `less` if every repeat is at most 1/threshold, 'no practical difference' if all lie
    between, else inconclusive."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "not measured"
    if lo >= threshold:
        return more
    if hi <= 1 / threshold:
        return less
    if lo > 1 / threshold and hi < threshold:
        return "no practical difference"
    return "inconclusive"


def speed(cost: pd.DataFrame | None, a: str, b: str, col: str) -> tuple[float, float, float, str]:
    """Images/s of net a over net b per repeat (the repeats are interleaved, so repeat r of both nets ran
    close in time): (median, min, max, verdict)."""
    if cost is None or cost.empty or not {a, b} <= set(cost.label):
        return math.nan, math.nan, math.nan, "not measured"
    ra = cost[cost.label == a].set_index("repeat")[col]
    rb = cost[cost.label == b].set_index("repeat")[col]
    r = (ra / rb).dropna()
    if r.empty:
        return math.nan, math.nan, math.nan, "not measured"
    return (
        float(r.median()),
        float(r.min()),
        float(r.max()),
        ratio_verdict(r.min(), r.max(), SPEED_RATIO, "faster", "slower"),
    )


def memory(agg: pd.DataFrame, a: str, b: str) -> tuple[float, str]:
    """Peak training-step memory of net a over net b (one measurement each: a count, not a timing)."""
    m = agg.set_index("label").peak_memory_bytes.astype(float)
    if a not in m or b not in m or not (m[a] > 0 and m[b] > 0):
        return math.nan, "not measured"
    r = float(m[a] / m[b])
    return r, ratio_verdict(1 / r, 1 / r, 1 / MEMORY_RATIO, "lighter", "heavier")


BUDGET_STUDY = ("budget", "budget")  # the budget ladder's study and profile (experiments/budget.md)


def a2_budget_line(df: pd.DataFrame, fams: dict, runs: Path) -> list[str]:
    """Issue 24 (5): A2 = A1 + (ResNet-deep − ResNet-shallow), per seed. The second term is the deeper ResNet's own
    deficit in these runs; the budget ladder measures the same two ResNets' gap at several budgets, so it says how
    much of A2 is the deep net's short-budget penalty rather than DenseNet's advantage. Computed, never typed."""
    a2 = _find(fams, "A2")
    a1 = (
        next((c for cs in fams.values() for c in cs if c.name.startswith("A1") and c.worse != a2.worse), None)
        if a2
        else None
    )
    if a2 is None or a1 is None:
        return []
    deep, shallow = skeleton.values(df, a2.worse, "test_error"), skeleton.values(df, a1.worse, "test_error")
    seeds = sorted(set(deep) & set(shallow))
    if len(seeds) < 2:
        return []
    own = float(np.mean([deep[s] - shallow[s] for s in seeds]))
    d_deep, d_shallow = int(df[df.label == a2.worse].depth.iloc[0]), int(df[df.label == a1.worse].depth.iloc[0])
    line = (
        f"- **Budget reading (issue 24):** A2 = A1 + ({a2.worse} − {a1.worse}) per seed; of A2's {a2.mean:+.2f} pp, "
        f"{own:+.2f} pp is {a2.worse}'s own deficit against {a1.worse} in these runs "
        f"({int(df.steps_planned.max()):,} iterations)."
    )
    from reslab.report import budget, budget_stats
    from reslab.report.results import load_results, run_dirs

    study, profile = BUDGET_STUDY
    if not run_dirs(runs, study, profile):
        return [line + " The budget ladder has not run here, so how much of that deficit is the budget is not read."]
    lad = budget.run_rows(load_results(runs, study, profile, vary=budget.VARY))
    cs = budget_stats.contrasts(lad[lad.decay_shape == "linear"], "test_error", d_deep, d_shallow)
    if not cs:
        return [line + f" The budget ladder has no ResNet-{d_deep} / ResNet-{d_shallow} pair to read it from."]
    words = {
        "supported": f"ResNet-{d_deep} better",
        "contradicted": f"ResNet-{d_shallow} better",
        "no practical difference": "no practical difference",
        "inconclusive": "inconclusive",
    }
    gaps = "; ".join(f"{c.extra['steps']:,}: {-c.mean:+.2f} pp ({words[c.verdict]})" for c in cs)
    t = budget_stats.gap_trend(lad[lad.decay_shape == "linear"], "test_error", d_deep, d_shallow)
    if t is not None:
        trend.decide_all([t])
    top = cs[-1]
    if t is not None and t.verdict == "falls" and top.verdict in ("no practical difference", "supported"):
        reading = (
            f"the gap falls with budget (seasonal Kendall p {skeleton.p_text(t.p)}) and is "
            f"{'within ±2 pp' if top.verdict == 'no practical difference' else words[top.verdict]} at "
            f"{top.extra['steps']:,} iterations, so the part of A2 that is the deeper "
            "ResNet's own deficit is a short-budget penalty; A1 (equal weights, no depth difference) is the part "
            "that the budget does not tilt"
        )
    else:
        reading = "the ladder does not show that deficit to be a budget effect"
    return [
        line + f" On the budget ladder ({study} study, full training set, {cs[0].n} seeds) ResNet-{d_deep} − "
        f"ResNet-{d_shallow} on test error is, by budget, {gaps}: {reading}. What would decide A2 itself at a "
        f"longer budget: DenseNet-BC and ResNet-{d_deep} trained at the ladder's top rung."
    ]


def _find(fams: dict, name: str) -> paired.Paired | None:
    return next((c for cs in fams.values() for c in cs if c.name == name), None)


def _flops(agg: pd.DataFrame, label: str) -> int:
    return int(agg.set_index("label").flops[label])


# What reslab.summary.count_flops counts (torch.utils.flop_counter's registry: convolutions, matrix products and
# attention; tests/test_cost.py checks the registry still holds nothing else), and so what it leaves out.
FLOPS_COUNT = (
    "`reslab.summary.count_flops`: torch.utils.flop_counter over one forward pass of one 32x32 image, "
    "multiply-add = 2, counting convolutions and matrix multiplications (the classifier) only"
)
FLOPS_LEAVE_OUT = (
    "BatchNorm, ReLU, pooling, the residual additions and the concatenations (copies: no arithmetic, "
    "but memory traffic), and the whole backward pass and optimizer step of training"
)
SHARE_GROUPS = {
    "share_conv": "conv",
    "share_bn": "BN",
    "share_relu": "ReLU",
    "share_cat": "concatenation",
    "share_other": "other",
}


def where_measured(cost: pd.DataFrame | None) -> str:
    """'on this CPU' (or 'on <device>'), the device cost.csv was measured on."""
    dev = str(cost.device.iloc[0]) if cost is not None and "device" in cost and len(cost) else ""
    if dev.startswith("cpu"):  # name the CPU where cost.csv records it: a study's runs may come from two
        cpu = str(cost.cpu.iloc[0]) if "cpu" in cost and cost.cpu.notna().all() else ""
        return f"on {cpu}" if cpu else "on this CPU"
    return f"on {dev.split(' (')[0]}" if dev else "as measured"


def speed_words(s: tuple[float, float, float, str], what: str) -> str:
    """A speed ratio (this net / the other, median [min, max] over repeats, verdict) as a reader says it."""
    r, lo, hi, v = s
    if v == "slower":
        return f"{1 / r:.1f}x slower {what}"
    if v == "faster":
        return f"{r:.1f}x faster {what}"
    if v == "no practical difference":
        return f"as fast {what} ({r:.2f}x, within {SPEED_RATIO - 1:.0%} in every repeat)"
    return (
        f"{r:.2f}x the speed {what} ([{lo:.2f}, {hi:.2f}] over repeats: not decided by the {SPEED_RATIO - 1:.0%} rule)"
    )


def memory_words(m: float, v: str) -> str:
    return (
        f"about the same peak memory ({m:.2f}x)"
        if v == "no practical difference"
        else f"{m:.1f}x the peak memory"
        if m >= 1
        else f"{m:.2f}x the peak memory"
    )


def measured_clause(cost: pd.DataFrame | None, agg: pd.DataFrame, a: str, b: str) -> str:
    """'on this CPU 2.4x slower to train and 2.8x the peak memory': net a against net b, computed from cost.csv
    (training images/s per interleaved repeat) and the peak training-step memory."""
    s = speed(cost, a, b, "train_images_per_s")
    m, mv = memory(agg, a, b) if cost is not None and "peak_memory_bytes" in agg else (math.nan, "not measured")
    parts = ([speed_words(s, "to train")] if s[3] != "not measured" else []) + (
        [memory_words(m, mv)] if mv != "not measured" else []
    )
    return (
        f"{where_measured(cost)} {' and '.join(parts)}"
        if parts
        else "speed and memory not measured (run `reslab-cost`)"
    )


def shares_text(agg: pd.DataFrame, label: str) -> str | None:
    """'conv 39%, BN 23%, ReLU 18%, concatenation 10%, other 10%' of one net's training step, if measured."""
    if not set(SHARE_GROUPS) <= set(agg.columns):
        return None
    r = agg.set_index("label").loc[label]
    if not all(np.isfinite(float(r[k])) for k in SHARE_GROUPS):
        return None
    return ", ".join(f"{name} {float(r[k]):.0%}" for k, name in SHARE_GROUPS.items())


def claim_a(fams: dict, agg: pd.DataFrame, cost: pd.DataFrame | None) -> list[str]:
    """Claim (a), 'DenseNet does better than ResNet with fewer weights and less computation': decided on the
    A2 pair (DenseNet-BC at the smallest budget against ResNet at the largest: fewer weights by construction)
    with the counted FLOPs for 'less computation'; the headline also states what was measured (training
    throughput and peak memory), since the FLOP count leaves BN, ReLU and concatenation out. A1 reads it at
    equal weights."""
    budgets = budgets_of(agg)
    lines = []
    a2 = _find(fams, "A2")
    if a2 is None:
        lines.append(
            f"- _A2 needs {RESNET} and {DENSENET} at two budgets; this study has "
            f"{', '.join(sorted(set(agg.label))) or 'no nets'}: claim (a) is not tested._"
        )
        overall = "not tested"
    else:
        d, r = a2.better, a2.worse
        fd, fr = _flops(agg, d), _flops(agg, r)
        pd_, pr = int(agg.set_index("label").params[d]), int(agg.set_index("label").params[r])
        counts = f"{pd_ / pr:.2f}x the parameters, {fd / fr:.2f}x the FLOPs"
        lines.append(
            skeleton.verdict_line(
                a2,
                f"**A2, fewer weights** ({pd_:,} vs {pr:,} parameters)",
                {
                    "supported": "better with fewer weights",
                    "no practical difference": "as good, not better, with fewer weights",
                    "contradicted": "worse with fewer weights",
                    "inconclusive": "open",
                },
            )
        )
        less = fd < fr
        lines.append(
            f"- **Less computation, as counted** ({FLOPS_COUNT}): {d} {fd:,} vs {r} {fr:,} "
            f"(ratio {fd / fr:.2f}) → {'fewer' if less else 'not fewer'} counted FLOPs. Not counted: "
            f"{FLOPS_LEAVE_OUT}."
        )
        st = speed(cost, d, r, "train_images_per_s")
        si = speed(cost, d, r, "infer_images_per_s")
        m, mv = memory(agg, d, r) if cost is not None and "peak_memory_bytes" in agg else (math.nan, "not measured")
        if st[3] != "not measured" or mv != "not measured":
            got = []
            if st[3] != "not measured":
                got.append(f"training images/s {st[0]:.2f} [{st[1]:.2f}, {st[2]:.2f}] over repeats → {st[3]}")
            if si[3] != "not measured":
                got.append(f"inference images/s {si[0]:.2f} [{si[1]:.2f}, {si[2]:.2f}] → {si[3]}")
            if mv != "not measured":
                got.append(f"peak training-step memory {m:.2f} → {mv}")
            lines.append(
                f"- **Measured {where_measured(cost)}** (reported beside the counts; the plan's rule decides "
                f"on the counts), {d} / {r}: " + "; ".join(got) + "."
            )
        sd_, sr = shares_text(agg, d), shares_text(agg, r)
        if sd_ and sr:
            lines.append(
                f"- **Where a training step's time goes** (torch.profiler, self time of every operator, "
                f"{where_measured(cost)}): {d}: {sd_}; {r}: {sr}. BN, ReLU and concatenation are what the "
                "FLOP count leaves out."
            )
        if not less:
            counted = f"contradicted: DenseNet-BC with fewer weights needs more conv-FLOPs ({fd / fr:.2f}x)"
        else:
            counted = {
                "supported": f"supported on parameter and conv-FLOP counts ({counts})",
                "no practical difference": f"partly supported on parameter and conv-FLOP counts: as good as "
                f"ResNet with fewer weights and fewer conv-FLOPs ({counts}), not better",
                "contradicted": "contradicted: worse than ResNet",
                "inconclusive": f"inconclusive on accuracy; fewer parameters and conv-FLOPs ({counts})",
            }[a2.verdict]
        overall = f"{counted}; {measured_clause(cost, agg, d, r)}"
    lines.append(f"- **Claim (a) → {overall}.**")
    eq = []
    for b in budgets:
        c = _find(fams, f"A1 at {b}")
        if c is None:
            continue
        fd, fr = _flops(agg, c.better), _flops(agg, c.worse)
        eq.append(
            skeleton.verdict_line(c, f"A1 at {b}, equal weights")
            + f" FLOPs {c.better} / {c.worse}: {fd / fr:.2f} ({'fewer' if fd < fr else 'more'} counted FLOPs)."
        )
    if eq:
        lines += ["", "At equal weights (the study's matched budgets; same Holm family):", *eq]
    return lines


def claim_b(fams: dict, agg: pd.DataFrame, cost: pd.DataFrame | None) -> list[str]:
    """Claim (b), 'VoVNet keeps DenseNet's strengths while being faster and lighter', per budget: accuracy kept
    (B1 not decided worse: as good or better), faster (inference images/s, the speed Lee et al. report) and
    lighter (peak training-step memory). Supported if all three hold at every budget, contradicted if one fails."""
    net, lines, outcomes = nets_by(agg), [], []
    for b in budgets_of(agg):
        c = _find(fams, f"B1 at {b}")
        if c is None:
            continue
        v, d = net[VOVNET, b], net[DENSENET, b]
        kept = {"supported": False, "no practical difference": True, "contradicted": True}.get(c.verdict)
        si = speed(cost, v, d, "infer_images_per_s")
        st = speed(cost, v, d, "train_images_per_s")
        mr, mv = memory(agg, v, d)
        fast = {"faster": True, "slower": False, "no practical difference": False}.get(si[3])
        light = {"lighter": True, "heavier": False, "no practical difference": False}.get(mv)
        parts = [kept, fast, light]
        outcome = "contradicted" if False in parts else "supported" if all(p is True for p in parts) else "inconclusive"
        outcomes.append(outcome)
        fl = _flops(agg, v) / _flops(agg, d)
        lines += [
            f"- **At {b}:**",
            "  " + skeleton.verdict_line(c, "accuracy kept", AS_GOOD),
            f"  - faster: inference images/s {v} / {d} = "
            + (
                f"{si[0]:.2f} [{si[1]:.2f}, {si[2]:.2f}] over "
                f"repeats → **{si[3]}**; training {st[0]:.2f} [{st[1]:.2f}, {st[2]:.2f}] → {st[3]}"
                if si[3] != "not measured"
                else "**not measured** (run `reslab-cost`)"
            )
            + ".",
            f"  - lighter: peak training-step memory {v} / {d} = "
            + (f"{mr:.2f} → **{mv}**" if mv != "not measured" else "**not measured**")
            + f"; forward FLOPs {v} / {d} = {fl:.2f}.",
            f"  - at {b} → **{outcome}**.",
        ]
    if not outcomes:
        return [
            f"- _B1 needs {VOVNET} and {DENSENET} at the same budget; not in this study: claim (b) is not tested._",
            "- **Claim (b) → not tested.**",
        ]
    overall = (
        "contradicted"
        if "contradicted" in outcomes
        else "supported"
        if set(outcomes) == {"supported"}
        else "inconclusive"
    )
    return lines + [f"- **Claim (b) → {overall}** (over {len(outcomes)} budget(s))."]


# Published numbers.


def _published_params(note: str) -> str | None:
    """'0.8M' from a published row's note such as 'C10+ (augmented); params 0.8M'."""
    for part in str(note).split(";"):
        words = part.split()
        if len(words) == 2 and words[0] == "params":
            return words[1]
    return None


def published_rows(agg: pd.DataFrame, pub: pd.DataFrame, why_not: str | None) -> pd.DataFrame:
    """Every DenseNet row of shared/reference/published.csv (Huang et al. 2017, Table 2), and the ResNet rows at
    our ResNets' depths, each beside our net of the same family and size (parameters within the budget
    tolerance; for ResNet the same depth), if the study has one."""
    rows = pub[
        (pub.source == "Huang2017-DenseNet")
        | (
            (pub.source == "He2016-ResNet")
            & (pub.model == RESNET)
            & pub.depth.isin({str(d) for d in agg[agg.family == RESNET].depth})
        )
    ]
    rows = rows[(rows.metric == "test_error_pct") & (rows.dataset == "CIFAR-10")]
    out = []
    for _, p in rows.iterrows():
        size = _published_params(p.note)
        ours = agg[agg.family == p.model]
        if p.model == RESNET or size is None:
            ours = ours[ours.depth.astype(str) == p.depth]
        else:
            ours = ours[(ours.params / parse_budget(size) - 1).abs() <= TOLERANCE]
        mine = ours.iloc[0] if len(ours) else None
        reasons = (
            [f"published depth {p.depth}, ours {mine.depth}"] if mine is not None and str(mine.depth) != p.depth else []
        )
        reasons += [why_not] if why_not else []
        out.append(
            {
                "published net": f"{p.model}-{p.depth} ({p.variant})",
                "source": published.cite(p),
                "published test err %": p.value,
                "published params": size or "-",
                "our net": mine.label if mine is not None else "- (none of this size in the study)",
                "our params": f"{mine.params:,}" if mine is not None else "-",
                "ours test err % (mean ± sd)": pm(mine.test_error_mean, mine.test_error_std, mine.n_seeds)
                if mine is not None
                else "-",
                "comparable?": "-" if mine is None else ("no: " + "; ".join(reasons)) if reasons else "yes",
            }
        )
    return pd.DataFrame(out)


# Sections.


def _mib(v) -> str:
    return f"{v / 2**20:.0f}" if v is not None and np.isfinite(v) else "-"


def _ips(med, lo, hi) -> str:
    return f"{med:.0f} [{lo:.0f}, {hi:.0f}]" if np.isfinite(med) else "-"


def _shares(r) -> str:
    vals = [float(r.get(k, math.nan)) for k in SHARE_GROUPS]
    return " / ".join(f"{v:.0%}" for v in vals) if all(np.isfinite(vals)) else "-"


def results_table(agg: pd.DataFrame) -> pd.DataFrame:
    shares = (
        {"train step time % (conv / BN / ReLU / concat / other)": [_shares(r) for _, r in agg.iterrows()]}
        if set(SHARE_GROUPS) <= set(agg.columns) and agg[list(SHARE_GROUPS)].notna().any().any()
        else {}
    )
    return pd.DataFrame(
        {
            "family": agg.family,
            "budget": agg.budget,
            "net": agg.label,
            "params": agg.params.map("{:,}".format),
            "FLOPs (fwd, 1 img)": agg.flops.map("{:,}".format),
            "train img/s": [_ips(m, lo, hi) for m, lo, hi in zip(agg.train_ips, agg.train_ips_min, agg.train_ips_max)],
            "infer img/s": [_ips(m, lo, hi) for m, lo, hi in zip(agg.infer_ips, agg.infer_ips_min, agg.infer_ips_max)],
            "peak step memory (MiB)": agg.peak_memory_bytes.map(_mib),
            **shares,
            "train err % (mean ± sd)": [
                pm(m, s, n) for m, s, n in zip(agg.train_error_mean, agg.train_error_std, agg.n_seeds)
            ],
            "test err % (mean ± sd)": [
                pm(m, s, n) for m, s, n in zip(agg.test_error_mean, agg.test_error_std, agg.n_seeds)
            ],
            "seeds": agg.n_seeds,
            "diverged": agg.diverged,
        }
    )


def cost_note(cost: pd.DataFrame | None, study: str, profile: str) -> str:
    if cost is None or cost.empty:
        return (
            f"_Throughput and memory not measured yet: `reslab-cost study={study} profile={profile}` (part of "
            f"`make sweep-block`) writes `runs/{study}/{profile}/cost.csv` after the training sweep._"
        )
    r = cost.iloc[0]
    method = "; ".join(sorted(set(cost.memory_method.dropna())))
    return (
        f"Cost measured by `reslab-cost` on {r.device} (torch {r.torch}, {int(r.threads)} threads, precision "
        f"{r.precision}, channels_last {r.channels_last}), one net at a time after the training sweep: images/s at "
        f"batch {int(r.batch_size)} over {int(r.timed_steps)} timed steps after {int(r.warmup_steps)} warm-up steps, "
        f"median [min, max] over {int(cost.repeat.nunique())} interleaved repeats; peak step memory at batch "
        f"{int(r.memory_batch)}: {method}. FLOPs: {FLOPS_COUNT}; not counted: {FLOPS_LEAVE_OUT}."
        + (
            f" Train step time %: one net's training step at batch {int(r.batch_size)} ({int(r.profiled_steps)} "
            f"step(s) after the timed ones) under torch.profiler, the self time of every operator grouped by its "
            "nearest named ancestor: convolutions (forward and backward), BatchNorm, ReLU (clamp_min and "
            "threshold_backward on a CPU), concatenation (aten::cat and its backward), everything else "
            "(residual additions, pooling, the classifier, the optimizer step)."
            if "share_conv" in cost and cost.share_conv.notna().any()
            else " Where a step's time goes (conv vs BN/ReLU/concatenation) was not measured: `reslab-cost` with "
            "`cost.profiled_steps` > 0 on a CPU adds it."
        )
    )


def signal_lines(df: pd.DataFrame, out: Path) -> list[str]:
    """The backward signal during training per net (the flow probe's signal.csv), as the depth report reads it."""
    sig_rows = load_csvs(df, "signal.csv")
    if sig_rows.empty:
        return ["_The runs recorded no backward signal (probes.flow_points was 0)._"]
    upd = load_csvs(df, "updates.csv")
    fam = df.drop_duplicates("label").set_index("label").family
    # The table is per net: the net's name without its depth, so that the row reads as the label.
    sig_rows["family"] = sig_rows.label.str.rsplit("-", n=1).str[0]
    if not upd.empty:
        upd["family"] = upd.label.map(fam)  # one panel per block type, one line per depth (= per budget)
    lines, _ = flow.training_signal_section(sig_rows, upd, out)
    return [
        "Block outputs are what each family stacks: residual blocks; dense layers and transitions; OSA modules "
        "and the max-pools between stages. The ratio compares the stem's output with the last block's, so it "
        "reads every family the same way.",
        "",
        *lines,
    ]


def styles(agg: pd.DataFrame) -> tuple[dict, dict]:
    """(family -> colour, budget -> marker): a family keeps its colour in every figure, your own blocks after the
    study's."""
    families = FAMILIES + sorted(set(agg.family) - set(FAMILIES))
    markers = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(budgets_of(agg) + [OFF_BUDGET])}
    return plots.fixed_colors(families), markers


def curve_panels(agg: pd.DataFrame) -> dict[str, list[str]]:
    """The learning-curve panels: one per budget, the nets off every budget last."""
    return {
        f"budget {b}": list(agg[agg.budget == b].label)
        for b in budgets_of(agg) + [OFF_BUDGET]
        if (agg.budget == b).any()
    }


ARMS = {"main": "block", "large": "block-large"}  # conf/experiment/<name>.yaml; experiments/block.md, "Two arms"


def arm_lines(df: pd.DataFrame, study: str = "block") -> list[str]:
    """Which arms of the design have runs (for the block study itself; a pilot or follow-up is one sweep), read from
    the sweeps' manifests (reslab.run.sweep), and the sweep's wall time against its summed training time."""
    have = {v.get("name") for v in df["variant"] if isinstance(v, dict)} if "variant" in df else set()
    jobs = [job for m in sweep.manifests(Path(df.run_dir.iloc[0]).parent) for job in m["jobs"]]
    lines = []
    for arm, name in ARMS.items() if study == "block" else ():
        asked = [job for job in jobs if f"experiment={name}" in job]
        # In the order the sweep launched them (the experiment config's order), each once.
        nets = list(dict.fromkeys(o.partition("=")[2] for job in asked for o in job if o.startswith("block=")))
        if not nets:
            lines.append(
                f"- {arm} arm (`experiment={name}`): **not run** (no sweep of it recorded): the contrasts that "
                "need its nets are not tested."
            )
            continue
        done = [n for n in nets if n in have]
        state = "run" if len(done) == len(nets) else f"{len(done)} of its {len(nets)} nets run"
        lines.append(f"- {arm} arm (`experiment={name}`, {len(nets)} nets: {', '.join(nets)}): {state}.")
    lines += skeleton.sweep_lines(df)
    return lines


def followup_lines(reports: Path, study: str) -> list[str]:
    """A pointer from the main study to its follow-up's report, once that report exists (experiments/block.md,
    amendment of 2026-11-30: claim (a) on fresh seeds, analysed alone, so its verdicts live in their own report)."""
    if study != "block" or not (reports / FOLLOWUP / "README.md").is_file():
        return []
    return [
        f"- Follow-up of claim (a) (`experiment={FOLLOWUP}`, fresh seeds, analysed alone as the plan's amendment "
        f"of 2026-11-30 fixes): its verdicts are in [reports/{FOLLOWUP}](../{FOLLOWUP}/README.md); the verdicts "
        "below are this study's seeds only."
    ]


FOLLOWUP = "block-followup"


@dataclass
class Study:
    """What the report says, computed once from the runs and the cost sweep's measurements."""

    study: str
    profile: str
    runs: Path
    df: pd.DataFrame
    cost: pd.DataFrame | None
    agg: pd.DataFrame
    fams: dict
    fronts: dict
    curves: pd.DataFrame
    pub: pd.DataFrame
    why_not: str | None
    steps: int


RUN_COLUMNS = [
    "label",
    "family",
    "budget",
    "depth",
    "seed",
    "status",
    "train_error",
    "test_error",
    "train_loss",
    "test_loss",
    "steps",
    "params",
    "flops",
    "wall_seconds",
    "images_per_second",
    "git_commit",
    "numerics",
    "key",
]


def build(runs: Path, reports: Path, profile: str, study: str = "block") -> Path:
    out = Path(reports) / study
    s = compute(runs, profile, study, out)
    figures(s, out)
    lines = [
        *header_section(s),
        *design_section(s, Path(reports)),
        *verdicts_section(s),
        *results_section(s),
        *curves_section(s),
        *gradient_flow_section(s, out),
        *descendants_section(Path(reports), s.study),
        *published_section(s),
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"


def compute(runs: Path, profile: str, study: str, out: Path) -> Study:
    df = load(runs, study, profile)
    out.mkdir(parents=True, exist_ok=True)  # after the runs passed their checks: a refused report writes nothing
    cost = load_cost(runs, study, profile)
    agg = aggregate(df).merge(cost_summary(cost), on="label", how="left")
    fams = contrasts(df, agg)
    skeleton.write_csv(df, out / "runs.csv", RUN_COLUMNS)
    skeleton.write_csv(agg, out / "results.csv")
    skeleton.write_csv(skeleton.contrasts_frame(fams["claims"] + fams["per-block"]), out / "contrasts.csv")
    skeleton.write_csv(skeleton.mcnemar_frame(fams["claims"] + fams["per-block"]), out / "mcnemar.csv")
    if cost is not None:
        skeleton.write_csv(cost, out / "cost.csv")
    return Study(
        study=study,
        profile=profile,
        runs=Path(runs),
        df=df,
        cost=cost,
        agg=agg,
        fams=fams,
        fronts={
            "params": pareto_front(agg, "params"),
            "train_ips": pareto_front(agg, "train_ips", higher_is_better=True),
        },
        curves=load_csvs(df, "curves.csv"),
        pub=published.load(),
        why_not=published.comparability(profile, df.data_checksum.iloc[0], df.data_format.iloc[0]),
        steps=int(df.steps_planned.max()),
    )


def figures(s: Study, out: Path) -> None:
    profile, agg = s.profile, s.agg
    plots.paired_differences(
        s.fams,
        out / "paired_differences.png",
        paired.PRACTICAL_PP,
        f"profile {profile}: every contrast as tested, paired over seeds",
    )
    colors, markers = styles(agg)
    plots.pareto(
        agg,
        [("params", "parameters (log)", True), ("train_ips", "training images/s, measured (log)", True)],
        s.fronts,
        colors,
        markers,
        out / "pareto.png",
        f"profile {profile}: test error against size and speed",
    )
    if not s.curves.empty:
        label_colors = {l: colors[f] for l, f in zip(agg.label, agg.family)}
        drops = [int(x) for x in s.df.lr_drop_steps.iloc[0]] if "lr_drop_steps" in s.df else []
        plots.variant_curves(
            s.curves,
            curve_panels(agg),
            label_colors,
            out / "curves.png",
            drops,
            f"profile {profile}: curve-probe error, mean over seeds (band: min-max)",
        )


def header_section(s: Study) -> list[str]:
    banner = skeleton.cpu_banner(
        s.profile,
        f"Every net trains for {s.steps} iterations with one recipe; compare "
        "the blocks with each other at equal budgets, not with the papers' "
        "numbers, and read the speeds as this device's.",
    )
    title = "Residual block vs DenseNet vs VoVNet at matched parameter budgets"
    return skeleton.header(title, s.df, s.study, PLAN, banner)


def design_section(s: Study, reports: Path) -> list[str]:
    return ["## Design as run", "", *arm_lines(s.df, s.study), *followup_lines(reports, s.study), ""]


def verdicts_section(s: Study) -> list[str]:
    fams, agg, cost = s.fams, s.agg, s.cost
    mcn = skeleton.mcnemar_lines(fams["claims"] + fams["per-block"])
    rule = templates.fill("block/rule.md", speed=f"{SPEED_RATIO - 1:.0%}", memory=f"{MEMORY_RATIO:.0%}")
    return [
        "## Verdicts (computed by the decision rule)",
        "",
        skeleton.rule_text(rule),
        "",
        '### Claim (a): "DenseNet does better than ResNet with fewer weights and less computation"',
        "",
        *claim_a(fams, agg, cost),
        *a2_budget_line(s.df, fams, s.runs),
        "",
        '### Claim (b): "VoVNet keeps DenseNet\'s strengths while being faster and lighter"',
        "",
        *claim_b(fams, agg, cost),
        "",
        skeleton.design_line(fams),
        "",
        "### Every block against its reference (per-block family, Holm)",
        "",
        "Pre-activation and bottleneck blocks against the post-activation basic block; VoVNetV2 against VoVNet and "
        "against DenseNet-BC.",
        "",
        markdown.table(skeleton.contrast_table(fams["per-block"])) if fams["per-block"] else "_No contrasts._",
        "",
        "![paired differences](paired_differences.png)",
        "",
        plots.paired_caption(paired.PRACTICAL_PP, "the claim or paper"),
        "",
        *(["### McNemar per seed (secondary, both families)", "", *mcn, ""] if mcn else []),
    ]


def results_section(s: Study) -> list[str]:
    return [
        "## Results per net",
        "",
        templates.fill("block/results.md", chance=f"{skeleton.CHANCE:.0f}"),
        "",
        cost_note(s.cost, s.study, s.profile),
        "",
        markdown.table(results_table(s.agg)),
        "",
        templates.fill("block/pareto_figure.md"),
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


def gradient_flow_section(s: Study, out: Path) -> list[str]:
    return ["## Gradient flow per block", "", *signal_lines(s.df, out), ""]


DESCENDANTS = "descendants"  # ResNet's descendants (issue 26): the block study's recipe, its own seeds and report


def descendants_rows(results: pd.DataFrame) -> pd.DataFrame:
    """One row per descendant net of the descendants study's committed results (reference: other seeds)."""
    rows = []
    for _, r in results.iterrows():
        rows.append(
            {
                "net": r["label"],
                "params": f"{int(r['params']):,}",
                "FLOPs (M)": f"{r['flops'] / 1e6:.1f}",
                "seeds": int(r["n_seeds"]),
                "test error % (mean ± sd)": pm(r["test_error_mean"], r["test_error_std"], int(r["n_seeds"])),
                "train error % (mean ± sd)": pm(r["train_error_mean"], r["train_error_std"], int(r["n_seeds"])),
                "train img/s": _ips(r.get("train_ips"), r.get("train_ips_min"), r.get("train_ips_max")),
                "peak memory (MiB)": _mib(r.get("peak_memory_bytes")),
            }
        )
    return pd.DataFrame(rows)


def descendants_section(reports: Path, study: str) -> list[str]:
    """ResNeXt, WRN, RoR and DPN rows, read from reports/descendants/ (results.csv, contrasts.csv) once that report
    exists: the same recipe and conf/block entries as this study, but its own fresh seeds, so its nets are shown
    beside this study's, never pooled into a verdict here (experiments/descendants.md)."""
    base = reports / DESCENDANTS
    if study != "block" or not (base / "results.csv").is_file():
        return []
    results = pd.read_csv(base / "results.csv")
    lines = [
        "## ResNet's descendants (ResNeXt, Wide ResNet, RoR, DPN)",
        "",
        f"From [reports/{DESCENDANTS}](../{DESCENDANTS}/README.md) (`make sweep-descendants`, plan "
        f"[experiments/{DESCENDANTS}.md](../../experiments/{DESCENDANTS}.md)): the block study's recipe and conf/block "
        "entries at 0.27M, trained on their own fresh seeds, so these rows sit beside the table above and are never "
        "pooled into this report's verdicts. Parameter counts are pinned against each paper's public implementation "
        "in tests/test_descendants.py; cost columns from that study's own `reslab-cost` step.",
        "",
        markdown.table(descendants_rows(results)),
        "",
    ]
    if (base / "contrasts.csv").is_file():
        con = pd.read_csv(base / "contrasts.csv")
        lines += [
            "One claim per paper, as that report's decision rule called it (paired over its seeds, Holm per claim):",
            "",
            markdown.table(
                pd.DataFrame(
                    {
                        "claim": con["name"],
                        "difference (pp)": [f"{m:+.2f}" for m in con["mean"]],
                        "95% CI": [f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in zip(con["ci_low"], con["ci_high"])],
                        "Holm p": [f"{p:.3g}" for p in con["p_holm"]],
                        "verdict": con["verdict"],
                    }
                )
            ),
            "",
        ]
    return lines


def published_section(s: Study) -> list[str]:
    why_not = s.why_not
    return [
        "## Ours vs published (DenseNet, and ResNet at our depths)",
        "",
        "Rows from `shared/reference/published.csv` (copied to `src/reslab/report/published.csv`), the source in every "
        "row. " + (f"No delta is computed: {why_not}." if why_not else "Like-for-like: paper profile, official data."),
        "",
        markdown.table(published_rows(s.agg, s.pub, why_not)),
        "",
        "Per-seed results: [runs.csv](runs.csv); contrasts with every statistic: [contrasts.csv](contrasts.csv); "
        "McNemar per seed: [mcnemar.csv](mcnemar.csv); per-net aggregates with cost: [results.csv](results.csv)"
        + ("; cost per repeat: [cost.csv](cost.csv)" if s.cost is not None else "")
        + f". Per-run outputs are under `runs/{s.study}/{s.profile}/`.",
    ]
