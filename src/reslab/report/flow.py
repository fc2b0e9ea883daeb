"""The gradient-flow section shared by the studies: at-init probes, probes during training, and
layer responses, with the statement the numbers support."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from reslab.probes.gradients import first_last_ratio
from reslab.report import plots

VANISHING_RATIO = 1e-2  # experiments/depth.md: first/last conv gradient-norm ratio below this = vanishing


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
        out.append({**dict(zip(series_keys + ["depth"], k)), "series": " ".join(str(x) for x in k[:-1]),
                    "ratio_median": float(np.median(v)), "ratio_min": float(v.min()), "ratio_max": float(v.max()),
                    "n": len(v)})
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
    return (f"{series}: first/last ratio {verdict} (threshold {VANISHING_RATIO:g}); at depth {int(deep.depth)} "
            f"{fmt_ratio(deep.ratio_median, deep.ratio_min, deep.ratio_max)} (median [min, max], n = {int(deep.n)}); "
            f"smallest seen {lo:.2g}"), vanish


def init_section(init_csv: Path, out_dir: Path) -> tuple[list[str], dict]:
    """Markdown lines and the vanishing verdicts per series, from reslab-gradflow's CSV."""
    if not init_csv.is_file():
        return [f"_At-initialisation probes not measured yet: run `make grad-flow DATA=...` "
                f"(writes `{init_csv}`)._"], {}, pd.DataFrame()
    rows = pd.read_csv(init_csv)
    meta = rows.iloc[0]
    r = ratios(rows, ["family", "norm", "depth", "init_seed"])
    s = summarize(r, ["family", "norm"])
    lines = [
        f"Measured at initialisation by `reslab-gradflow`: {int(rows.init_seed.nunique())} init seeds x "
        f"{int(meta.batches)} batches of {int(meta.batch_size)} augmented training images ({meta.data_copy}), "
        f"device {meta.device}. Ratio = gradient norm of the first conv / the last 3x3 conv (median [min, max] over "
        f"init seeds).", "",
    ]
    table = s.pivot_table(index="depth", columns="series", values="ratio_median")
    lo = s.pivot_table(index="depth", columns="series", values="ratio_min")
    hi = s.pivot_table(index="depth", columns="series", values="ratio_max")
    cols = list(table.columns)
    lines += ["| depth | " + " | ".join(cols) + " |", "|---|" + "|".join("---" for _ in cols) + "|"]
    for depth in table.index:
        lines.append(f"| {depth} | " + " | ".join(fmt_ratio(table.loc[depth, c], lo.loc[depth, c], hi.loc[depth, c])
                                                    if not math.isnan(table.loc[depth, c]) else "n/a" for c in cols) + " |")
    plots.ratio_vs_depth(s, out_dir / "gradflow_init_ratio.png", VANISHING_RATIO, "at initialisation")
    norms = sorted(rows.norm.unique())
    verdicts = {}
    for norm in norms:
        p = rows[(rows.kind == "main") & (rows.norm == norm)].copy()
        p["panel"] = p.family + f" (norm={norm})"
        plots.grad_profiles(p, out_dir / f"gradflow_init_layers_{norm}.png",
                            f"per-layer weight-gradient norm at init, norm={norm}")
    lines += ["", "![ratio at init](gradflow_init_ratio.png)", "",
              "_How to read: each point is the first-conv/last-conv gradient-norm ratio of one net at initialisation; "
              "points below the red line mean the input-side layers get less than 1/100 of the output side's gradient._",
              ""]
    for norm in norms:
        lines += [f"![per-layer gradients at init, norm={norm}](gradflow_init_layers_{norm}.png)", "",
                  f"_How to read: gradient norm of every conv/linear weight by layer (input side left), log scale, "
                  f"median over init seeds with min-max shading; a line that falls steeply to the left is a vanishing "
                  f"gradient (norm={norm})._", ""]
    for series in sorted(s.series.unique()):
        text, vanish = vanishing_statement(s, series)
        verdicts[series] = vanish
        lines.append(f"- {text}")
    return lines, verdicts, s


def training_section(grads: pd.DataFrame, results: pd.DataFrame, out_dir: Path, prefix: str) -> tuple[list[str], pd.DataFrame]:
    if grads.empty:
        return ["_No gradient probes were recorded during training._"], pd.DataFrame()
    r = ratios(grads, ["label", "family", "depth", "seed", "step"])
    first_step, last_step = r.groupby("label").step.transform("min"), r.groupby("label").step.transform("max")
    start = r[r.step == first_step].assign(when="start")
    end = r[r.step == last_step].assign(when="end")
    both = pd.concat([start, end])
    s = summarize(both.rename(columns={"when": "phase"}), ["family", "phase"])
    plots.ratio_vs_depth(s, out_dir / f"{prefix}_train_ratio.png", VANISHING_RATIO,
                         "during training (first and last probe)")
    lines = [f"![ratio during training]({prefix}_train_ratio.png)", "",
             "_How to read: the same first/last ratio, from the probe at the first and the last probed step of "
             "each training run; a ratio that stays near 1 means the early layers keep receiving gradient._", ""]
    return lines, s


def response_section(resp: pd.DataFrame, labels: list[str], out_dir: Path, name: str) -> list[str]:
    present = [l for l in labels if l in set(resp.label)] if not resp.empty else []
    if not present:
        return ["_No layer responses recorded._"]
    plots.layer_responses(resp, present, out_dir / name)
    lines = [f"![layer responses]({name})", "",
             "_How to read (as ResNet Fig. 7): the std of each 3x3 layer's response (after BN, before ReLU/addition) "
             "on test images for the trained nets, log scale; dashed = plain, solid = residual. Smaller residual responses mean "
             "the residual functions stay close to zero, the paper's argument for the reformulation._", ""]
    means = resp[resp.label.isin(present)].groupby("label")["std"].mean()
    lines.append("Mean response std per net: " + ", ".join(f"{l} {means[l]:.3f}" for l in present if l in means) + ".")
    return lines
