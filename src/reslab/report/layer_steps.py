"""Dead, vanishing, exploding or healthy: the state of every conv/linear layer of a trained net, read from the size of
the step it takes (experiments/depth.md, amendment of 2026-12-04 (evening), issue 25).

The probes record |w_after - w_before| / |w_before| of every weight at a few training steps
(reslab.probes.flow_callback). SGD with momentum m, weight decay wd and lr(s) moves a weight that gets no loss gradient
by a fixed share of itself, the **weight-decay floor** lr(s) x wd / (1 - m) (`floor`). A layer whose step equals the
floor at every counted probe is **dead**: its update is weight decay's alone. Every other layer is compared with the
shallowest net of its family at the same relative position: **vanishing** if its step is below 1/STEP_BAND of that,
**exploding** above STEP_BAND times, **healthy** in between. Steps are compared in multiples of the floor, which
divides the lr schedule out."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from reslab.report import plots, templates
from reslab.training.recipe import Recipe

DEAD_TOLERANCE = 0.05  # dead: within 5 % of the floor at every counted probe
STEP_BAND = 10.0  # vanishing below 1/10 of the reference step, exploding above 10 times it (plan (b)'s factor of 10)
# A probe counts once a momentum buffer fed by weight decay alone has reached its steady state to within a tenth of the
# tolerance: after s + 1 steps it holds (1 - m^(s+1)) of it, so the first counted step depends on the momentum only.
SETTLED = DEAD_TOLERANCE / 10
STATES = ("dead", "vanishing", "exploding", "healthy")
INPUT_QUARTER = 0.25  # relative layer position of the input quarter, as the relative-update table above it


def floor(lr: float, weight_decay: float, momentum: float) -> float:
    """|dW| / |W| of a weight that gets no loss gradient, once the momentum buffer has settled.

    torch.optim.SGD (dampening 0): buf_t = m buf_(t-1) + g_t + wd W_t, W_(t+1) = W_t - lr_t buf_t. With g = 0 and W
    almost constant over the ~1/(1 - m) steps the buffer remembers (each step shrinks it by the floor itself, a tiny
    share), buf_t = wd W (1 - m^(t+1)) / (1 - m) -> wd W / (1 - m), so |dW| / |W| = lr_t wd / (1 - m). The buffer
    holds no lr: right after an lr change it is still settled and the step is the new lr's floor. Nesterov
    steps by g + wd W + m buf_t = wd W (1 - m^(t+2)) / (1 - m): the same floor, settled one step sooner."""
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum {momentum}: the weight-decay floor needs 0 <= momentum < 1")
    return lr * weight_decay / (1 - momentum)


def settled_step(momentum: float) -> int:
    """The first probe step at which a decay-only momentum buffer is within SETTLED of its steady state."""
    if momentum <= 0:
        return 0
    return max(0, math.ceil(math.log(SETTLED) / math.log(momentum)) - 1)


def _field(result: Mapping, key: str, default=None):
    v = result.get(key, default)
    return default if v is None or (isinstance(v, float) and math.isnan(v)) else v


def recipe_of(result: Mapping, profile: Mapping) -> Recipe:
    """The Recipe a run trained with, from its result.json (schedule: Recipe.record's fields, and steps_planned) and
    the study's profile (momentum, weight decay, nesterov; result.json does not record them)."""
    total = int(result["steps_planned"])
    decay = _field(result, "lr_decay")
    warmup_steps = int(_field(result, "warmup_steps", 0))
    return Recipe(
        lr=float(result["lr"]),
        momentum=float(profile["momentum"]),
        weight_decay=float(profile["weight_decay"]),
        nesterov=bool(profile["nesterov"]),
        total_steps=total,
        # The record states the drops in steps (round(fraction x total)); as fractions of total they round back.
        milestones=tuple(int(d) / total for d in (_field(result, "lr_drop_steps", []) or [])),
        gamma=float(_field(result, "lr_gamma", 0.1)),
        warmup_steps=warmup_steps,
        warmup_lr=float(result["warmup_lr"]) if warmup_steps else None,
        warmup_shape=str(_field(result, "warmup_shape", "constant")),
        decay={"fraction": decay["fraction"], "shape": decay["shape"]} if decay else None,
    )


def with_floor(updates: pd.DataFrame, results: pd.DataFrame, profile: Mapping) -> pd.DataFrame:
    """The conv/linear rows of updates.csv (every run), with each step's lr, floor, the step in multiples of the
    floor (`x`) and whether the probe counts (`counted`: at or after settled_step)."""
    u = updates[updates.kind == "main"].copy()
    if u.empty:
        return u.assign(lr=[], floor=[], x=[], counted=[])
    recipes = {(r["label"], int(r["seed"])): recipe_of(r, profile) for r in results.to_dict("records")}
    rec = [recipes[(label, int(seed))] for label, seed in zip(u.label, u.seed)]
    u["lr"] = [r.lr * r.factor(int(s)) for r, s in zip(rec, u.step)]
    u["floor"] = [floor(lr, r.weight_decay, r.momentum) for r, lr in zip(rec, u.lr)]
    u["x"] = u.rel_update / u.floor
    u["counted"] = [int(s) >= settled_step(r.momentum) for r, s in zip(rec, u.step)]
    return u


def is_dead(x: pd.Series) -> bool:
    """Dead: the step is the floor (within DEAD_TOLERANCE, either side) at every counted probe."""
    return bool(len(x)) and bool((x - 1).abs().le(DEAD_TOLERANCE).all())


def state(dead: bool, vs_reference: float) -> str:
    if dead:
        return "dead"
    if vs_reference < 1 / STEP_BAND:
        return "vanishing"
    if vs_reference > STEP_BAND:
        return "exploding"
    return "healthy"


def layer_states(u: pd.DataFrame) -> pd.DataFrame:
    """One row per run and layer: the median step over counted probes (multiples of the floor), dead or not, the step
    against the shallowest net of the family at the same relative position (`vs_reference`) and the state."""
    c = u[u.counted]
    keys = ["family", "depth", "label", "seed", "layer", "rel_layer"]
    rows = c.groupby(keys).x.agg(x_median="median", dead=is_dead).reset_index()
    if rows.empty:
        return rows.assign(vs_reference=[], state=[])
    rows["vs_reference"] = [np.nan] * len(rows)
    for fam, g in rows.groupby("family"):
        base = g[g.depth == g.depth.min()].groupby("rel_layer").x_median.median()
        # Log-linear between the reference's layers: the steps differ by orders of magnitude along a net.
        ref = np.exp(np.interp(g.rel_layer, base.index, np.log(base.to_numpy())))
        rows.loc[g.index, "vs_reference"] = g.x_median.to_numpy() / ref
    rows["state"] = [state(d, v) for d, v in zip(rows.dead, rows.vs_reference)]
    return rows


def dead_span(layers: pd.Series) -> str:
    """'0-58' for the dead layers of one run (first to last dead layer), '-' when none."""
    if layers.empty:
        return "-"
    lo, hi = int(layers.min()), int(layers.max())
    return f"{lo}-{hi}" if hi > lo else str(lo)


READS_AS = {  # an input-quarter reading, and the layer states that count toward it
    "dead": ("dead",),
    "vanishing": ("dead", "vanishing"),
    "exploding": ("exploding",),
    "healthy": ("healthy",),
}


def input_reading(q: pd.DataFrame) -> str:
    """The state of a net's input quarter (its layers, of one seed or pooled over seeds): dead if most are dead,
    vanishing if most are dead or vanishing, exploding if most explode, else healthy."""
    for reading in ("dead", "vanishing", "exploding"):
        if q.state.isin(READS_AS[reading]).mean() > 0.5:
            return reading
    return "healthy"


def net_states(states: pd.DataFrame) -> pd.DataFrame:
    """One row per net: layers, seeds, per state the count of layers per seed (median, min, max), the dead layers'
    span per seed and their side, and its input quarter's reading (pooled over seeds), the share of the pooled layers
    behind it, the seeds whose own input quarter reads the same, and its median step against the reference."""
    out = []
    for (fam, depth), g in states.groupby(["family", "depth"]):
        seeds = g.groupby("seed")
        row = {"family": fam, "depth": int(depth), "net": f"{fam}-{int(depth)}"}
        row.update(layers=int(seeds.layer.nunique().max()), seeds=len(seeds))
        for s in STATES:
            k = seeds.state.apply(lambda x, s=s: int(x.eq(s).sum()))
            row.update({f"{s}_median": float(k.median()), f"{s}_min": int(k.min()), f"{s}_max": int(k.max())})
        dead = g[g.dead]
        row["dead_spans"] = [dead_span(r.layer[r.dead]) for _, r in seeds]
        row["dead_seeds"] = int(seeds.dead.any().sum())
        row["dead_side"] = "" if dead.empty else ("input side" if dead.rel_layer.median() < 0.5 else "output side")
        q = g[g.rel_layer <= INPUT_QUARTER]
        reading = input_reading(q)
        row.update(
            input_reading=reading,
            input_share=float(q.state.isin(READS_AS[reading]).mean()),
            input_seeds=int(sum(input_reading(qs) == reading for _, qs in q.groupby("seed"))),
            input_vs_reference=float(q.groupby("seed").vs_reference.median().median()),
            all_healthy=bool(g.state.eq("healthy").all()),
        )
        out.append(row)
    return pd.DataFrame(out).sort_values(["family", "depth"]).reset_index(drop=True)


def reference_of(nets: pd.DataFrame, family: str) -> str:
    """The net a family's steps are compared with: its shallowest."""
    return f"{family}-{int(nets[nets.family == family].depth.min())}"


def count_text(r, s: str) -> str:
    """'57 [50, 81]' (median [min, max] over seeds); one number when every seed has the same."""
    med, lo, hi = r[f"{s}_median"], r[f"{s}_min"], r[f"{s}_max"]
    return f"{med:g}" if lo == hi else f"{med:g} [{lo}, {hi}]"


def span_text(r) -> str:
    """'0-58, 0-51, 0-82 of 110, input side' (first to last dead layer, per seed), 'none' without a dead layer."""
    if not r.dead_seeds:
        return "none"
    return f"{', '.join(r.dead_spans)} of {r.layers}, {r.dead_side}"


def table_lines(nets: pd.DataFrame) -> list[str]:
    lines = [
        "| net | layers | dead | vanishing | exploding | healthy | first-last dead layer, per seed "
        "| input quarter: step / reference | input quarter reads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in nets.iterrows():
        lines.append(
            f"| {r.net} | {r.layers} | "
            + " | ".join(count_text(r, s) for s in STATES)
            + f" | {span_text(r)} | {r.input_vs_reference:.3g} (vs {reference_of(nets, r.family)}) "
            f"| {r.input_reading} ({r.input_share:.0%} of its input-quarter layers; {r.input_seeds} of {r.seeds} "
            "seeds) |"
        )
    return lines


def compute(updates: pd.DataFrame, results: pd.DataFrame, profile: Mapping | None) -> tuple[pd.DataFrame, ...]:
    """(updates with their floors, per-layer states, per-net states); empty frames without updates or profile."""
    if updates.empty or not profile:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    u = with_floor(updates, results, profile)
    states = layer_states(u)
    return u, states, (net_states(states) if not states.empty else pd.DataFrame())


def floors_text(u: pd.DataFrame) -> str:
    """'2.5e-05 at lr 0.025, 2.5e-06 at lr 0.0025': the floors of the counted probes."""
    f = u[u.counted].groupby("lr").floor.first().sort_index(ascending=False)
    return ", ".join(f"{v:.3g} at lr {lr:g}" for lr, v in f.items())


def section(updates: pd.DataFrame, results: pd.DataFrame, profile: Mapping | None, out_dir) -> tuple:
    """(Markdown lines, per-net states) of the step-state section, with its figure."""
    u, states, nets = compute(updates, results, profile)
    if nets.empty:
        return [
            "_No update sizes at a counted probe step (or no profile to compute the floor from), so no layer state is "
            "read._"
        ], nets
    momentum = float(profile["momentum"])
    plots.step_states(states, out_dir / "gradflow_step_states.png")
    lines = [
        templates.fill(
            "depth/step_states.md",
            floors=floors_text(u),
            momentum=f"{momentum:g}",
            weight_decay=f"{float(profile['weight_decay']):g}",
            settled=settled_step(momentum),
            counted=", ".join(str(int(s)) for s in sorted(u[u.counted].step.unique())),
            skipped=", ".join(str(int(s)) for s in sorted(u[~u.counted].step.unique())) or "none",
            tolerance=f"{DEAD_TOLERANCE:.0%}",
            band=f"{STEP_BAND:g}",
            quarter=f"{INPUT_QUARTER:g}",
        ),
        "",
        *table_lines(nets),
        "",
        *at_floor_lines(u, list(nets.net)),
        "",
        "![step size by layer, in multiples of the weight-decay floor](gradflow_step_states.png)",
        "",
        "_How to read: each layer's step in multiples of the weight-decay floor (median over the counted probes, then "
        "over seeds), by relative layer position (0 = input side), log scale; the dashed line is the floor, a cross "
        "marks a layer that is dead in at least one seed._",
    ]
    return lines, nets


def at_floor_by_step(u: pd.DataFrame) -> pd.DataFrame:
    """Description, not a rule: per net and counted probe, the layers whose step is the floor there (within
    DEAD_TOLERANCE), median over seeds, and the net's layer count. It says *when* layers reach the floor, which the
    dead rule (at the floor at every counted probe) does not: a layer that moves early and stops later is not dead by
    the rule."""
    c = u[u.counted].assign(at=lambda d: (d.x - 1).abs().le(DEAD_TOLERANCE))
    if c.empty:
        return pd.DataFrame(columns=["label", "family", "depth", "step", "at_floor", "layers"])
    per_seed = c.groupby(["label", "family", "depth", "seed", "step"]).agg(
        at=("at", "sum"), layers=("layer", "nunique")
    )
    return (
        per_seed.groupby(["label", "family", "depth", "step"])
        .agg(at_floor=("at", "median"), layers=("layers", "max"))
        .reset_index()
    )


def at_floor_lines(u: pd.DataFrame, order: list[str]) -> list[str]:
    """The description above as a table, for the nets with a layer at the floor at some counted probe."""
    t = at_floor_by_step(u)
    hit = [lbl for lbl in order if (t[t.label == lbl].at_floor > 0).any()]
    if not hit:
        return ["No layer of any net is at the floor at any counted probe."]
    steps = sorted(int(s) for s in t.step.unique())
    lines = [
        "When layers reach the floor (a description beside the rule, not part of it): layers at the floor at each "
        "counted probe, median over seeds, of the net's layers; nets with none at any probe are left out.",
        "",
        "| net | " + " | ".join(f"step {s}" for s in steps) + " |",
        "|---|" + "---|" * len(steps),
    ]
    for lbl in hit:
        g = t[t.label == lbl].set_index("step")
        cells = [f"{g.at_floor[s]:.0f} of {int(g.layers[s])}" if s in g.index else "-" for s in steps]
        lines.append(f"| {lbl} | " + " | ".join(cells) + " |")
    return lines
