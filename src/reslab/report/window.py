"""The critical window (issue 25): when plain and residual nets of one depth part, read at the first training steps.

Warm-up ends at step 40 of the depth study's cpu profile, and the loss spikes and the plain nets' split happen well
before the first evenly spaced flow probe (step 200). The depth study's flow probes are therefore also taken at the
steps of `probes.flow_window` (conf/experiment/depth.yaml); this module reads them: per net and probe step, the
per-block GSC rate (reslab.probes.signal, as the other gradient-flow sections) and the loss at the same step, and the
step at which the two nets of a depth part by the rule of experiments/depth.md (note of 2026-12-04, `part_step`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reslab.probes import signal as sig
from reslab.report import plots, templates

PLAIN, RESIDUAL = "plain", "resnet"
LOSS_SOURCES = {
    "probe": "the flow probe's loss on its fixed batches, at the same steps as the GSC",
    "curves": "the curve probe's running training loss (the mean over the steps since its previous point; these "
    "runs' flow probes record no loss)",
}


def per_run(signal: pd.DataFrame) -> pd.DataFrame:
    """One row per run and flow-probe step: family, depth, seed, step, the per-block GSC rate, and the loss on the
    probe's batches (NaN where the rows predate it)."""
    rows = []
    if signal.empty:
        return pd.DataFrame(columns=["family", "depth", "seed", "step", "gsc_rate", "loss"])
    has_gsc = {"act_rms", "elements"} <= set(signal.columns)
    for (family, depth, seed, step), g in signal.groupby(["family", "depth", "seed", "step"]):
        g = g.sort_values("block")
        rate = (
            sig.summarise_gsc(g.grad_rms.to_numpy(), g.act_rms.to_numpy(), g.elements.to_numpy())["gsc_rate"]
            if has_gsc
            else math.nan
        )
        loss = float(g["loss"].iloc[0]) if "loss" in g else math.nan
        rows.append(
            {
                "family": family,
                "depth": int(depth),
                "seed": int(seed),
                "step": int(step),
                "gsc_rate": rate,
                "loss": loss,
            }
        )
    return pd.DataFrame(rows)


def window_steps(results: pd.DataFrame) -> list[int]:
    """The steps of the critical window the runs recorded: their flow-probe steps that their `probes.flow_window`
    asked for (none for runs from before it)."""
    steps: set[int] = set()
    for _, r in results.iterrows():
        probes = r.get("probes") if isinstance(r.get("probes"), dict) else {}
        window = {int(s) for s in (probes.get("flow_window") or [])}
        recorded = r.get("flow_probe_steps")
        steps |= window & {int(s) for s in (recorded if isinstance(recorded, list) else [])}
    return sorted(steps)


def losses(runs: pd.DataFrame, curves: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(family, depth, seed, step, loss), and its source (LOSS_SOURCES): the flow probe's where the runs record it
    (from step 0), else the curve probe's running training loss (from its first window)."""
    cols = ["family", "depth", "seed", "step", "loss"]
    probe = runs[runs.loss.notna()] if not runs.empty else runs
    if not probe.empty:
        return probe[cols].reset_index(drop=True), "probe"
    if curves is None or curves.empty or "running_train_loss" not in curves:
        return pd.DataFrame(columns=cols), "curves"
    c = curves[(curves.step >= 1) & (curves.running_images > 0)]
    return c.assign(loss=c.running_train_loss)[cols].reset_index(drop=True), "curves"


@dataclass
class Parting:
    depth: int
    step: int | None  # None: they do not part within the probed steps
    first_probed: int | None  # the first probe step >= 1 both nets have
    last_probed: int | None
    plain: tuple[float, float] = (math.nan, math.nan)  # min, max of the plain net's loss over seeds at `step`
    residual: tuple[float, float] = (math.nan, math.nan)


def _by_step(loss: pd.DataFrame, family: str, depth: int) -> pd.DataFrame:
    g = loss[(loss.family == family) & (loss.depth == depth)]
    # A non-finite loss (a blow-up, a diverged run) is higher than any finite one.
    return g.pivot_table(index="step", columns="seed", values="loss", aggfunc="first", dropna=False).apply(
        lambda c: c.astype(float).where(np.isfinite(c.astype(float)), np.inf)
    )


def part_step(loss: pd.DataFrame, depth: int) -> Parting:
    """The rule (experiments/depth.md, note of 2026-12-04): plain-d and its residual twin part at the first probe step
    s >= 1 at which every seed of the plain net has a higher loss than every seed of the residual net, and that holds
    at every later probe step both have."""
    p, r = _by_step(loss, PLAIN, depth), _by_step(loss, RESIDUAL, depth)
    steps = sorted(s for s in set(p.index) & set(r.index) if s >= 1)
    if not steps:
        return Parting(depth, None, None, None)
    above = [bool(p.loc[s].min() > r.loc[s].max()) for s in steps]
    start = None
    for i in range(len(steps) - 1, -1, -1):  # the start of the run of separated steps that reaches the last step
        if not above[i]:
            break
        start = steps[i]
    part = Parting(depth, start, steps[0], steps[-1])
    if start is not None:
        part.plain = (float(p.loc[start].min()), float(p.loc[start].max()))
        part.residual = (float(r.loc[start].min()), float(r.loc[start].max()))
    return part


def _gsc_at(runs: pd.DataFrame, family: str, depth: int, step: int) -> str:
    g = runs[(runs.family == family) & (runs.depth == depth) & (runs.step == step)].gsc_rate.dropna()
    if g.empty:
        return "not measured"
    m = float(g.median())
    return f"{m:.3g} ({sig.gsc_reading(m)})"


def gsc_step(runs: pd.DataFrame, depth: int, step: int) -> int | None:
    """The last flow-probe step at or before `step` at which both nets of `depth` have a GSC rate."""
    both = [
        set(runs[(runs.family == f) & (runs.depth == depth) & runs.gsc_rate.notna()].step) for f in (PLAIN, RESIDUAL)
    ]
    steps = [s for s in both[0] & both[1] if s <= step]
    return int(max(steps)) if steps else None


def _range(lo_hi: tuple[float, float]) -> str:
    lo, hi = (f"{v:.3g}" for v in lo_hi)
    return lo if lo == hi else f"{lo}-{hi}"


def parting_line(part: Parting, runs: pd.DataFrame) -> str:
    pl, rs = f"{PLAIN}-{part.depth}", f"{RESIDUAL}-{part.depth}"
    if part.first_probed is None:
        return f"- {pl} and {rs}: no probe step both have."
    if part.step is None:
        return (
            f"- {pl} and {rs} **do not part** within the probed steps ({part.first_probed} to {part.last_probed}): "
            "at the last one, or later, some seed of the plain net has a loss no higher than some seed of the residual."
        )
    edge = " (the first step probed after step 0: at or before it)" if part.step == part.first_probed else ""
    at = gsc_step(runs, part.depth, part.step)
    where = "there" if at == part.step else f"at step {at}, the last flow probe before it"
    gsc = (
        f" Per-block GSC {where} (median over seeds): {pl} {_gsc_at(runs, PLAIN, part.depth, at)}, "
        f"{rs} {_gsc_at(runs, RESIDUAL, part.depth, at)}."
        if at is not None
        else ""
    )
    return (
        f"- **{pl} and {rs} part at step {part.step}**{edge}: loss {_range(part.plain)} vs {_range(part.residual)} "
        f"(range over seeds), the plain net above at every later probe step to {part.last_probed}.{gsc}"
    )


def not_measured_line(results: pd.DataFrame, signal_steps: list[int]) -> str:
    """The one line of a study whose runs have no flow probe in the window."""
    later = [s for s in signal_steps if s > 0]
    first = later[0] if later else None
    warm = int(results.warmup_steps.max()) if "warmup_steps" in results and results.warmup_steps.notna().any() else 0
    return (
        f"_The critical window is not measured in these runs: their flow probes are at steps "
        f"{', '.join(map(str, signal_steps)) or 'none'}"
        + (f", none between step 0 and step {first}" if first else "")
        + (f" (warm-up ends at step {warm})" if warm else "")
        + "; `make sweep-depth` with this commit records them. Until then the parting below is read on the curve "
        "probe's loss, and the GSC only at the flow-probe steps._"
    )


def section(signal: pd.DataFrame, curves: pd.DataFrame, results: pd.DataFrame, out: Path) -> list[str]:
    """The section's lines and its figure (critical_window.png): figure beside the loss, one computed parting sentence
    per depth, and the one-line note where the runs have no probe in the window."""
    runs = per_run(signal)
    if runs.empty:
        return ["_The training runs recorded no flow probes, so the critical window is not measured._"]
    window = window_steps(results)
    loss, source = losses(runs, curves)
    depths = sorted(set(runs[runs.family == PLAIN].depth) & set(runs[runs.family == RESIDUAL].depth))
    parts = {d: part_step(loss, d) for d in depths}
    warm = int(results.warmup_steps.max()) if "warmup_steps" in results and results.warmup_steps.notna().any() else 0
    plots.critical_window(
        runs,
        loss,
        depths,
        out / "critical_window.png",
        band=sig.GSC_RATE_BAND,
        warmup=warm,
        parts={d: p.step for d, p in parts.items()},
        loss_label="flow-probe loss" if source == "probe" else "running training loss (curve probe)",
    )
    lines = [templates.fill("depth/critical_window.md", warmup=str(warm), band=f"{sig.GSC_RATE_BAND:.3g}"), ""]
    if not window:
        lines += [not_measured_line(results, sorted(int(s) for s in runs.step.unique())), ""]
    else:
        lines += [f"Flow probes in the window: steps {', '.join(map(str, window))}.", ""]
    lines += [
        "![the critical window](critical_window.png)",
        "",
        templates.fill("depth/critical_window_read.md", band=f"{sig.GSC_RATE_BAND:.3g}"),
        "",
        f"Loss read: {LOSS_SOURCES[source]}.",
        "",
        *(parting_line(parts[d], runs) for d in depths),
        "",
    ]
    return lines
