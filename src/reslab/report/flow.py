"""The gradient-flow section shared by the studies: at-init probes, probes during training, and
layer responses, with the statement the numbers support."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from reslab.probes import signal as sig
from reslab.probes.gradients import first_last_ratio
from reslab.report import plots

# The first depth plan's (2026-11-23) rule: first/last conv weight-gradient-norm ratio below this = vanishing.
# Superseded by plan (b) of 2026-11-25 (experiments/depth.md: the size-free backward-signal band, reslab.probes.signal);
# kept to show the first study's statistic for comparison, labelled superseded wherever it appears.
VANISHING_RATIO = 1e-2


def ratios(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """First/last-conv gradient ratio per group of `keys` (one probe = one group)."""
    out = []
    for k, g in rows.groupby(keys):
        k = k if isinstance(k, tuple) else (k,)
        out.append({**dict(zip(keys, k)), "ratio": first_last_ratio(g.sort_values("layer").to_dict("records"))})
    return pd.DataFrame(out)


def summarize(r: pd.DataFrame, series_keys: list[str]) -> pd.DataFrame:
    out = []
    for k, g in r.groupby(series_keys + ["depth"]):
        v = g.ratio.to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        out.append(
            {
                **dict(zip(series_keys + ["depth"], k)),
                "series": " ".join(str(x) for x in k[:-1]),
                "ratio_median": float(np.median(v)),
                "ratio_min": float(v.min()),
                "ratio_max": float(v.max()),
                "n": len(v),
            }
        )
    return pd.DataFrame(out)


def fmt_ratio(med: float, lo: float, hi: float) -> str:
    return f"{med:.2g} [{lo:.2g}, {hi:.2g}]"


def vanishing_statement(s: pd.DataFrame, series: str) -> tuple[str, bool | None]:
    d = s[s.series == series]
    if d.empty:
        return f"no measurements for {series}", None
    lo = d.ratio_min.min()
    deep = d.sort_values("depth").iloc[-1]
    if (d.ratio_max < VANISHING_RATIO).all():
        verdict, vanish = "vanishing at every depth", True
    elif (d.ratio_min >= VANISHING_RATIO).all():
        verdict, vanish = "not vanishing at any depth", False
    else:
        verdict, vanish = "vanishing at some depths only", None
    return (
        f"{series}: first/last ratio {verdict} (the first plan's superseded threshold {VANISHING_RATIO:g}, "
        f"for comparison only); at depth {int(deep.depth)} "
        f"{fmt_ratio(deep.ratio_median, deep.ratio_min, deep.ratio_max)} (median [min, max], n = {int(deep.n)}); "
        f"smallest seen {lo:.2g}"
    ), vanish


def init_section(init_csv: Path, out_dir: Path) -> tuple[list[str], dict]:
    """Markdown lines and the vanishing verdicts per series, from reslab-gradflow's CSV."""
    if not init_csv.is_file():
        return (
            [f"_At-initialisation probes not measured yet: run `make grad-flow DATA=...` (writes `{init_csv}`)._"],
            {},
            pd.DataFrame(),
        )
    rows = pd.read_csv(init_csv)
    meta = rows.iloc[0]
    r = ratios(rows, ["family", "norm", "depth", "init_seed"])
    s = summarize(r, ["family", "norm"])
    lines = [
        f"Measured at initialisation by `reslab-gradflow`: {int(rows.init_seed.nunique())} init seeds x "
        f"{int(meta.batches)} batches of {int(meta.batch_size)} augmented training images ({meta.data_copy}), "
        f"device {meta.device}. Ratio = gradient norm of the first conv / the last 3x3 conv (median [min, max] over "
        f"init seeds).",
        "",
    ]
    table = s.pivot_table(index="depth", columns="series", values="ratio_median")
    lo = s.pivot_table(index="depth", columns="series", values="ratio_min")
    hi = s.pivot_table(index="depth", columns="series", values="ratio_max")
    cols = list(table.columns)
    lines += ["| depth | " + " | ".join(cols) + " |", "|---|" + "|".join("---" for _ in cols) + "|"]
    for depth in table.index:
        lines.append(
            f"| {depth} | "
            + " | ".join(
                fmt_ratio(table.loc[depth, c], lo.loc[depth, c], hi.loc[depth, c])
                if not math.isnan(table.loc[depth, c])
                else "n/a"
                for c in cols
            )
            + " |"
        )
    plots.ratio_vs_depth(s, out_dir / "gradflow_init_ratio.png", VANISHING_RATIO, "at initialisation")
    norms = sorted(rows.norm.unique())
    verdicts = {}
    for norm in norms:
        p = rows[(rows.kind == "main") & (rows.norm == norm)].copy()
        p["panel"] = p.family + f" (norm={norm})"
        plots.grad_profiles(
            p, out_dir / f"gradflow_init_layers_{norm}.png", f"per-layer weight-gradient norm at init, norm={norm}"
        )
    lines += [
        "",
        "![ratio at init](gradflow_init_ratio.png)",
        "",
        "_How to read: each point is the first-conv/last-conv gradient-norm ratio of one net at initialisation; "
        f"points below the red line get less than 1/{1 / VANISHING_RATIO:g} of the output side's gradient, the first "
        "plan's threshold, superseded by the backward-signal band above (for comparison only)._",
        "",
    ]
    for norm in norms:
        lines += [
            f"![per-layer gradients at init, norm={norm}](gradflow_init_layers_{norm}.png)",
            "",
            f"_How to read: gradient norm of every conv/linear weight by layer (input side left), log scale, "
            f"median over init seeds with min-max shading; a line that falls steeply to the left is a vanishing "
            f"gradient (norm={norm})._",
            "",
        ]
    for series in sorted(s.series.unique()):
        text, vanish = vanishing_statement(s, series)
        verdicts[series] = vanish
        lines.append(f"- {text}")
    return lines, verdicts, s


def training_ratios(grads: pd.DataFrame) -> pd.DataFrame:
    """First/last-conv gradient ratio of every net at its first and last probed training step, summarised over
    seeds per family, phase (start, end) and depth."""
    r = ratios(grads, ["label", "family", "depth", "seed", "step"])
    first_step, last_step = r.groupby("label").step.transform("min"), r.groupby("label").step.transform("max")
    start = r[r.step == first_step].assign(when="start")
    end = r[r.step == last_step].assign(when="end")
    both = pd.concat([start, end])
    return summarize(both.rename(columns={"when": "phase"}), ["family", "phase"])


def training_section(
    grads: pd.DataFrame, results: pd.DataFrame, out_dir: Path, prefix: str
) -> tuple[list[str], pd.DataFrame]:
    if grads.empty:
        return ["_No gradient probes were recorded during training._"], pd.DataFrame()
    s = training_ratios(grads)
    plots.ratio_vs_depth(
        s, out_dir / f"{prefix}_train_ratio.png", VANISHING_RATIO, "during training (first and last probe)"
    )
    lines = [
        f"![ratio during training]({prefix}_train_ratio.png)",
        "",
        "_How to read: the same first/last ratio, from the probe at the first and the last probed step of "
        "each training run; a ratio that stays near 1 means the early layers keep receiving gradient._",
        "",
    ]
    return lines, s


ORDERING = {  # the reading of the residual - plain difference's confidence interval (responses_ordering.md)
    "smaller": "residual smaller",
    "larger": "residual larger",
    "unresolved": "not resolved at this budget",
}


def response_per_run(resp: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per run (label, seed): the median over layers of the per-layer `column`, the mean over layers of the mean over
    all channels (`std`: what the old figure drew), and the channels masked in it (NaN where the run does not record
    them)."""
    d = resp if "seed" in resp else resp.assign(seed=0)
    masked = d["masked"] if "masked" in d else pd.Series(np.nan, index=d.index)
    g = d.assign(masked=masked).groupby(["label", "seed"])
    return pd.DataFrame(
        {
            "response": g[column].median(),
            "mean_all": g["std"].mean(),
            "masked": g["masked"].sum(min_count=1),
            "channels": g["channels"].sum() if "channels" in d else np.nan,
            "layers": g["layer"].nunique(),
        }
    ).reset_index()


def response_ordering(per_run: pd.DataFrame, labels: list[str]) -> list[dict]:
    """Per depth with a plain net and its residual twin: the per-seed difference residual - plain of the median
    response, its mean and t confidence interval over the seeds both have, and the reading (ORDERING)."""
    from reslab.report import paired

    out = []
    for l in labels:
        if not l.startswith("plain-"):
            continue
        twin = "resnet-" + l.split("-", 1)[1]
        if twin not in labels:
            continue
        a, b = (per_run[per_run.label == x].set_index("seed").response.dropna().to_dict() for x in (twin, l))
        c = paired.paired("fig7", "response", twin, l, a, b)
        lo, hi = c.ci
        key = "smaller" if hi < 0 else "larger" if lo > 0 else "unresolved"  # a NaN interval (one seed) is unresolved
        out.append({"plain": l, "residual": twin, "n": c.n, "mean": c.mean, "lo": lo, "hi": hi, "reading": key})
    return out


def ordering_lines(order: list[dict]) -> list[str]:
    """The ordering sentence with its uncertainty, one clause per depth and a count (responses_ordering.md)."""
    from reslab.report import paired, templates

    if not order:
        return []
    parts = []
    for o in order:
        ci = f"[{o['lo']:+.3g}, {o['hi']:+.3g}]" if np.isfinite(o["lo"]) else "(no interval: one seed)"
        parts.append(
            f"{o['residual']} − {o['plain']}: {o['mean']:+.3g} {ci} over {o['n']} seeds, *{ORDERING[o['reading']]}*"
        )
    n = {k: sum(o["reading"] == k for o in order) for k in ORDERING}
    total = len(order)
    if n["smaller"] == total:
        where = "the one depth compared" if total == 1 else f"all {total} depths"
        verdict = f"The paper's Fig. 7 ordering holds at {where}, each interval below 0."
    elif n["unresolved"]:
        verdict = (
            f"The paper's Fig. 7 ordering holds (interval below 0) at {n['smaller']} of {total} depths, is reversed "
            f"(interval above 0) at {n['larger']}, and is not resolved at this budget at {n['unresolved']}: whether "
            "it holds is not resolved by these runs."
        )
    else:
        verdict = (
            f"The paper's Fig. 7 ordering holds (interval below 0) at {n['smaller']} of {total} depths and is "
            f"reversed (interval above 0) at {n['larger']}: it does not hold throughout in this profile."
        )
    return [
        templates.fill("flow/responses_ordering.md", confidence=f"{paired.CONFIDENCE:.0%}"),
        "",
        "Residual − plain, median response per seed: " + "; ".join(parts) + ". " + verdict,
    ]


def response_section(resp: pd.DataFrame, labels: list[str], out_dir: Path, name: str) -> list[str]:
    from reslab.probes.responses import MASK_VAR_EPS
    from reslab.report import templates

    # Each net once (a study of one depth lists it as both its shallowest and its deepest).
    present = list(dict.fromkeys(l for l in labels if l in set(resp.label))) if not resp.empty else []
    if not present:
        return ["_No layer responses recorded._"]
    d = resp[resp.label.isin(present)]
    column = plots.response_column(d)
    plots.layer_responses(d, present, out_dir / name, column)
    bands = plots.response_bands(d, present, column)
    top = plots.response_axis_top(bands)
    how = (
        "per-channel std over all eval images, BN recalibrated on training images"
        if "bn" in d and (d.bn == "recalibrated").all()
        else "std pooled over channels on one eval batch, BN running statistics "
        "(the first study's definition; rerun `reslab-reprobe` for the paper's)"
    )
    statistic = {
        "std_masked": "the mean over channels without the near-constant ones",
        "std_median": "the median over channels",
    }[column]
    lines = [
        f"![layer responses]({name})",
        "",
        templates.fill(
            "flow/responses_read.md",
            how=how,
            statistic=statistic,
            top_factor=f"{plots.RESPONSE_AXIS_TOP:g}",
            top=f"{top:.3g}",
        ),
        "",
    ]
    off = [(l, b) for l, b in bands.items() if (b["mean"] > top).any()]
    if off:
        lines += [
            "Off the axis: "
            + "; ".join(
                f"{l}, {int((b['mean'] > top).sum())} of {len(b)} layers (largest {b['mean'].max():.3g}"
                + off_axis_gamma(d, l, b.index[b["mean"] > top])
                + ")"
                for l, b in off
            )
            + ".",
            "",
        ]
    if "masked" in d and d.masked.notna().all() and int(d.masked.sum()) == 0:
        # Said outright: the figure's outliers are then not the near-constant channels the masking removes.
        lines += [
            f"No channel of any run drawn meets the masking rule (BN variance at most {MASK_VAR_EPS:g} x eps): "
            "every response drawn is a mean over all of its layer's channels, and a layer far off the axis has large "
            "learned BN scales (its median |gamma| above), not channels divided by sqrt(eps).",
            "",
        ]
    if column == "std_median":
        lines += [templates.fill("flow/responses_unmasked.md"), ""]
    mask = "eps" if MASK_VAR_EPS == 1 else f"{MASK_VAR_EPS:g} x eps"
    lines += [templates.fill("flow/responses_scale.md", mask=mask), ""]
    per_run = response_per_run(d, column)
    masked_note = "masked channels per run (mean over seeds)"
    lines += [
        f"| net | response, median over layers: mean [min, max] over seeds | {masked_note} | all-channel std, mean "
        "over layers (median over seeds) |",
        "|---|---|---|---|",
    ]
    for l in present:
        g = per_run[per_run.label == l]
        r = g.response
        spread = f" [{r.min():.3g}, {r.max():.3g}]" if len(g) > 1 else ""
        masked = f"{g.masked.mean():.3g} of {g.channels.mean():.0f}" if g.masked.notna().all() else "not recorded"
        lines.append(f"| {l} | {r.mean():.3g}{spread} | {masked} | {g.mean_all.median():.3g} |")
    moved = np.abs(d[column].to_numpy(dtype=float) - 1)
    moved = moved[np.isfinite(moved)]
    gamma = d["gamma_abs_median"].dropna() if "gamma_abs_median" in d else pd.Series(dtype=float)
    lines += [
        "",
        templates.fill(
            "flow/responses_moved.md",
            moved=f"{np.median(moved):.3g}",
            median=f"{np.nanmedian(d[column]):.3g}",
            gamma=f"; median |gamma| over layers and runs {gamma.median():.3g}" if len(gamma) else "",
        ),
    ]
    order = response_ordering(per_run, present)
    if order:
        lines += ["", *ordering_lines(order)]
    return lines


def off_axis_gamma(d: pd.DataFrame, label: str, layers) -> str:
    """'; median |gamma| of those layers G' (over layers and seeds), where the runs record the BN scales."""
    if "gamma_abs_median" not in d:
        return ""
    g = d[(d.label == label) & d.layer.isin(list(layers))].gamma_abs_median.dropna()
    return f"; median |gamma| of those layers {g.median():.3g}" if len(g) else ""


# Which statistic the readings (`reading`, and so the mechanism paragraph and the verdict sentences) come from: the
# GSC's per-block rate (band reslab.probes.signal.GSC_RATE_BAND), as experiments/depth.md's amendment of 2026-12-04
# fixed before any GSC reading of the study's nets was computed (issue 25); before it, "ratio" (the RMS ratio, plan
# (b) of 2026-11-25). Both readings are computed and shown either way (`ratio_reading`, `gsc_reading`), and each
# positive control is checked by the statistic it was built for.
READING_STATISTIC = "gsc"
READING_STATISTICS = ("ratio", "gsc")


def _gsc(g: pd.DataFrame) -> dict:
    """Whole-net GSC and its per-block rate from one probe's rows (NaN where the rows predate act_rms)."""
    if not {"act_rms", "elements"} <= set(g.columns):
        return {"gsc": np.nan, "gsc_rate": np.nan}
    g = g.sort_values("block")
    s = sig.summarise_gsc(g.grad_rms.to_numpy(), g.act_rms.to_numpy(), g.elements.to_numpy())
    return {"gsc": s["gsc"], "gsc_rate": s["gsc_rate"]}


def signal_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per net and init seed: ratio and slope of the block-output gradient RMS, and the gradient scale coefficient
    (whole net and per-block rate) from the same rows (reslab.probes.signal)."""
    out = []
    keys = ["family", "norm", "depth", "init_scale", "control", "init_seed"]
    rows = rows.fillna({"control": ""})
    if "control_statistic" not in rows:  # rows of reslab-gradflow before the GSC: every control was the ratio's
        rows = rows.assign(control_statistic=np.where(rows.control.astype(bool), "ratio", ""))
    for k, g in rows.fillna({"control_statistic": ""}).groupby(keys):
        out.append(
            {
                **dict(zip(keys, k)),
                "control_statistic": g.control_statistic.iloc[0],
                **sig.summarise(g.sort_values("block").grad_rms.to_numpy()),
                **_gsc(g),
            }
        )
    return pd.DataFrame(out)


def signal_readings(summary: pd.DataFrame, statistic: str | None = None) -> pd.DataFrame:
    """One row per net: median [min, max] over init seeds of the ratio, of the whole-net GSC and of its per-block
    rate, the median slope, the reading of the median ratio (`ratio_reading`, band sig.BAND) and of the median
    rate (`gsc_reading`, band sig.GSC_RATE_BAND); `reading` is the one of `statistic` (READING_STATISTIC unless
    given), and for a control, `as_expected` says whether it is the expected one."""
    statistic = statistic or READING_STATISTIC
    if statistic not in READING_STATISTICS:
        raise ValueError(f"statistic {statistic!r}; valid: {', '.join(READING_STATISTICS)}")
    if "gsc" not in summary:
        summary = summary.assign(gsc=np.nan, gsc_rate=np.nan)
    out = []
    for k, g in summary.groupby(["family", "norm", "depth", "init_scale", "control"]):
        row = dict(zip(["family", "norm", "depth", "init_scale", "control"], k))
        for col in ("ratio", "gsc", "gsc_rate"):
            v = g[col].to_numpy(dtype=float)
            row.update(
                {f"{col}_median": float(np.median(v)), f"{col}_min": float(v.min()), f"{col}_max": float(v.max())}
            )
        row.update(
            slope_median=float(np.median(g.slope)),
            n=len(g),
            ratio_reading=sig.reading(row["ratio_median"]),
            gsc_reading=sig.gsc_reading(row["gsc_rate_median"]),
        )
        row["reading"] = row[f"{statistic}_reading"]
        # A control is checked by the statistic it was built for: the scaled-init nets are controls of the ratio
        # (the GSC is built to ignore a scale), reslab.probes.controls' chains are controls of the GSC.
        built_for = str(g.control_statistic.iloc[0]) if "control_statistic" in g and row["control"] else "ratio"
        row["control_statistic"] = built_for if row["control"] else ""
        row["as_expected"] = (row[f"{built_for}_reading"] == row["control"]) if row["control"] else None
        out.append(row)
    return pd.DataFrame(out).sort_values(["control", "family", "norm", "depth"]).reset_index(drop=True)


def signal_section(signal_csv: Path, out_dir: Path) -> tuple[list[str], pd.DataFrame]:
    """Markdown lines and the per-net readings at initialisation, from reslab-gradflow's signal CSV."""
    if not Path(signal_csv).is_file():
        return [
            f"_The backward signal at initialisation is not measured yet: run `make grad-flow DATA=...` "
            f"(writes `{signal_csv}`)._"
        ], pd.DataFrame()
    rows = pd.read_csv(signal_csv)
    readings = signal_readings(signal_summary(rows))
    meta = rows.iloc[0]
    primary = {"ratio": "the RMS ratio (plan (b) of 2026-11-25)", "gsc": "the per-block GSC rate"}[READING_STATISTIC]
    lines = [
        f"Statistic: the RMS of dL/dh at every block output h (the stem counts as block 0), averaged over "
        f"{int(meta.batches)} batches of {int(meta.batch_size)} augmented training images per net, train-mode BN, "
        f"{int(rows.init_seed.nunique())} init seeds; He fan-in init everywhere (it keeps the backward signal's "
        "variance constant through ReLU convs without BN, so the no-BN nets show what the architecture does on its "
        "own). **ratio** = input side (stem output) / output side (last block output); **slope** = fitted change of "
        "log10 RMS over the net's relative depth, in decades (negative: larger toward the input). Reading of the "
        f"median ratio: *vanishing* below 1/{sig.BAND:g}, *exploding* above {sig.BAND:g}, *neither* in between "
        "(experiments/depth.md). The no-BN nets and the controls were only probed at initialisation, not trained.",
        "",
        "**GSC** = Philipp, Song & Carbonell's gradient scale coefficient (arXiv:1712.05577) from the same rows: per "
        "block, (RMS of dL/dh x RMS of h) at its input over the same at its output, times sqrt(input size / output "
        "size), i.e. how much the block amplifies a relative change of its input on the way back; scale-free (the "
        "ratio is not: after BN, dL/dh scales as 1/|h|). Whole net = the product over blocks (input side / output "
        "side); **per block** = its geometric mean, whole ** (1 / blocks), the depth-free number. Reading of the "
        f"median rate: *vanishing* below 1/{sig.GSC_RATE_BAND:.3g}, *exploding* above {sig.GSC_RATE_BAND:.3g} "
        f"(= {sig.BAND:g} ** (1/9): the ratio's band over the 9 blocks of a depth-20 net). The readings used below "
        f"are those of {primary}.",
        "",
        "| net | norm | init | GSC per block, median [min, max] | whole-net GSC | GSC reading | ratio median [min, "
        "max] "
        "| slope (decades) | ratio reading | positive control |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in readings.iterrows():
        init = "He" if r.init_scale == 1 else f"He x{r.init_scale:g}"
        ctrl = (
            (f"expected {r.control} ({r.control_statistic}): " + ("**correct**" if r.as_expected else "**WRONG**"))
            if r.control
            else "-"
        )
        lines.append(
            f"| {r.family}-{int(r.depth)} | {r.norm} | {init} | "
            f"{fmt_ratio(r.gsc_rate_median, r.gsc_rate_min, r.gsc_rate_max)} | {r.gsc_median:.3g} | "
            f"{r.gsc_reading} | {fmt_ratio(r.ratio_median, r.ratio_min, r.ratio_max)} | {r.slope_median:+.2f} "
            f"| {r.ratio_reading} | {ctrl} |"
        )
    plots.signal_profiles(
        rows[rows.control.isna() | (rows.control == "")], out_dir / "gradflow_signal_init.png", band=sig.BAND
    )
    lines += [
        "",
        "![backward signal at init](gradflow_signal_init.png)",
        "",
        "_How to read: RMS of the loss gradient at each block output against relative depth (0 = input side), "
        "median over init seeds with min-max band, log scale; a line that rises toward the left is a gradient "
        "that grows toward the input (exploding), one that falls toward the left vanishes._",
        "",
    ]
    controls = readings[readings.control.astype(bool)]
    if len(controls):
        ok = bool(controls.as_expected.all())
        lines.append(
            ("All positive controls are read as built (" if ok else "**A positive control is misread** (")
            + "; ".join(_control_text(r) for _, r in controls.iterrows())
            + (
                "), so the probe can tell vanishing and exploding gradients apart."
                if ok
                else "): the readings above cannot be trusted."
            )
        )
        if (controls.control_statistic == "ratio").any():
            lines += [
                "",
                "_The scaled-init controls are controls of the ratio only: a ReLU net without BN is positively "
                "homogeneous, so scaling its weights leaves every relative sensitivity, the GSC, as it was "
                "(reslab.probes.controls)._",
            ]
    return lines, readings


BUILT = {"vanishing": "vanish", "exploding": "explode"}


def _control_text(r) -> str:
    if r.control_statistic == "gsc":
        return (
            f"{r.family} ({int(r.depth)} blocks, built to {BUILT[r.control]}): {r.gsc_reading}, GSC per "
            f"block {r.gsc_rate_median:.3g}"
        )
    return f"{r.family}-{int(r.depth)} no-BN init x{r.init_scale:g}: {r.ratio_reading}, ratio {r.ratio_median:.2g}"


LITERATURE = """Published work on the backward signal at initialisation (checked against the papers' abstracts;
details in [experiments/literature-gradient-flow.md](../../experiments/literature-gradient-flow.md)):
- Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz, *A Mean Field Theory of Batch Normalization*, ICLR 2019
  (arXiv:1902.08129): in deep BN nets without skip connections, gradients **grow exponentially with depth** at
  initialisation, and BN itself is the cause; such nets are not trainable at large depth. (Wide fully-connected
  nets; a prediction in kind for our conv nets, not in rate.)
- Philipp, Song & Carbonell, arXiv:1712.05577 (ICLR 2018 workshop): exploding gradients persist in BN nets; ResNets
  have much smaller gradient scale.
- Labatie, *Characterizing Well-Behaved vs. Pathological Deep Neural Networks*, ICML 2019 (arXiv:1811.03087):
  feedforward nets with or without BN become pathological with depth; residual nets with BN show power-law rather
  than exponential behaviour (conv nets included).
- De & Smith, NeurIPS 2020 (arXiv:2002.10444): BN down-scales residual branches by about sqrt(depth), so deep
  normalised residual blocks are near the identity and gradients well behaved (analysed for pre-activation blocks).
- He, Zhang, Ren & Sun, *Delving Deep into Rectifiers*, ICCV 2015 (arXiv:1502.01852): the fan-in ReLU init keeps
  the backward signal's variance constant with depth in plain nets without BN.
- He, Zhang, Ren & Sun, CVPR 2016 (arXiv:1512.03385), section 4.1: with BN the backward gradients of the plain
  ImageNet nets (18/34 layers) "exhibit healthy norms", so degradation is "unlikely to be caused by vanishing
  gradients". They tested for vanishing, not for explosion."""


def literature_lines(readings: pd.DataFrame) -> list[str]:
    """The published predictions, then reslab's readings set beside them (computed)."""
    lines = [LITERATURE, ""]
    if readings is None or readings.empty:
        return lines
    main = readings[~readings.control.astype(bool)]
    said = []
    for (fam, norm), g in main.groupby(["family", "norm"]):
        by = g.groupby("reading").depth.apply(lambda d: ", ".join(str(int(x)) for x in sorted(d)))
        said.append(f"{fam} nets with norm={norm}: " + "; ".join(f"{r} at depth {d}" for r, d in by.items()))
    plain_bn = main[(main.family == "plain") & (main.norm == "bn")]
    agree = bool(len(plain_bn)) and (plain_bn.sort_values("depth").ratio_median.diff().dropna() > 0).all()
    lines.append(
        "reslab's readings at initialisation: "
        + ". ".join(said)
        + ". "
        + (
            "The plain BN nets' input/output ratio grows with every step in depth, the direction Yang et al. "
            "predict (explosion toward the input caused by BN); this is a check in kind on conv nets, not of "
            "their rate."
            if agree
            else "The plain BN nets' ratio does not grow monotonically with depth, so "
            "Yang et al.'s prediction of exponential growth is not borne out in kind here."
        )
        + " Whether the explosion *causes* the degradation is not established by a measurement at "
        "initialisation (Yang et al. also report that the dynamic range shrinks after one step); the "
        "training-time readings are what can speak to it."
    )
    return lines


def training_signal(signal: pd.DataFrame) -> pd.DataFrame:
    """The backward-signal ratio (input side / output side) of every net at every training-time probe step:
    median, min, max and count over seeds."""
    per_run = []
    for k, g in signal.groupby(["family", "depth", "seed", "step"]):
        per_run.append(
            {
                **dict(zip(["family", "depth", "seed", "step"], k)),
                **sig.summarise(g.sort_values("block").grad_rms.to_numpy()),
                **_gsc(g),
            }
        )
    runs = pd.DataFrame(per_run).groupby(["family", "depth", "step"])
    # The GSC's per-block rate beside the ratio (median over seeds), for the readings after the amendment.
    return (
        runs.ratio.agg(["median", "min", "max", "count"])
        .join(runs.gsc_rate.median().rename("gsc_rate_median"))
        .reset_index()
    )


def training_signal_section(
    signal: pd.DataFrame, updates: pd.DataFrame, out_dir: Path
) -> tuple[list[str], pd.DataFrame]:
    """Readings of the backward signal at the training-time probe steps (same statistic, batches and band
    as at init), and the relative update size by layer, input side vs output side."""
    if signal.empty:
        return [
            "_The training runs did not record the backward signal (`probes.flow_points` was off when they "
            "ran, or they predate it); see issue 9._"
        ], pd.DataFrame()
    summary = training_signal(signal)
    steps = sorted(summary.step.unique())
    lines = [
        f"Same statistic, band and fixed batches as at initialisation, at steps {', '.join(map(str, steps))} of "
        "every training run (every seed); median [min, max] over seeds, and the reading of the median; then the "
        "median per-block GSC rate and its reading (band as at initialisation).",
        "",
        "| net | " + " | ".join(f"step {s}" for s in steps) + " |",
        "|---|" + "|".join("---" for _ in steps) + "|",
    ]
    for (fam, depth), g in summary.groupby(["family", "depth"]):
        cells = []
        for s in steps:
            r = g[g.step == s]
            if r.empty:
                cells.append("-")
                continue
            r = r.iloc[0]
            spread = f" [{r['min']:.2g}, {r['max']:.2g}]" if r["count"] > 1 else ""
            gsc = (
                f"; GSC {r['gsc_rate_median']:.3g}/block {sig.gsc_reading(r['gsc_rate_median'])}"
                if np.isfinite(r["gsc_rate_median"])
                else ""
            )
            cells.append(f"{r['median']:.2g}{spread} {sig.reading(r['median'])}{gsc}")
        lines.append(f"| {fam}-{int(depth)} | " + " | ".join(cells) + " |")
    if not updates.empty:
        plots.relative_updates(updates, out_dir / "gradflow_updates.png")
        u = updates[updates.kind == "main"].copy()
        u["side"] = np.where(
            u.rel_layer <= 0.25, "input quarter", np.where(u.rel_layer >= 0.75, "output quarter", "middle")
        )
        t = u[u.side != "middle"].groupby(["family", "depth", "side"]).rel_update.median().unstack("side")
        lines += [
            "",
            "![relative update size by layer](gradflow_updates.png)",
            "",
            "_How to read: |w_after - w_before| / |w_before| of every conv/linear weight at the probed steps, by "
            "relative layer position (0 = input side), median over seeds and probe steps; if early layers "
            "'update slowly' their points sit below the output side's._",
            "",
            "| net | median relative update, input quarter | output quarter | input / output |",
            "|---|---|---|---|",
        ]
        for (fam, depth), r in t.iterrows():
            lines.append(
                f"| {fam}-{int(depth)} | {r.get('input quarter', np.nan):.3g} | "
                f"{r.get('output quarter', np.nan):.3g} | "
                f"{r.get('input quarter', np.nan) / r.get('output quarter', np.nan):.3g} |"
            )
    return lines, summary
