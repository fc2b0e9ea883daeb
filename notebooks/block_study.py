# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Question 3: the residual block against other conv blocks at matched parameter budgets
# The block study (plan and decision rule: `experiments/block.md`): post- and pre-activation basic blocks,
# bottlenecks, DenseNet-BC, VoVNet and VoVNetV2, each sized to a parameter budget, with their measured cost
# (`reslab-cost`: images/s, peak memory). Read from `runs/<study>/<profile>/` and its `cost.csv` with the loader,
# the statistics and the figures of its report (`reslab.report.block`, what `reslab-report block` writes to
# `reports/block/`).
#
# Inputs: the parameters below, or the environment (`RESLAB_NB_RUNS`, `RESLAB_NB_PROFILE`, `RESLAB_NB_STUDY`).

# %% tags=["parameters"]
import os
from pathlib import Path

from reslab.paths import ROOT

RUNS = Path(os.environ.get("RESLAB_NB_RUNS", ROOT / "runs"))  # what `make sweep-block` fills
PROFILE = os.environ.get("RESLAB_NB_PROFILE", "cpu")
STUDY = os.environ.get("RESLAB_NB_STUDY", "block")  # or block-pilot, block-followup

# %%
from IPython.display import Markdown, display

from reslab.report import block, flow, plots, skeleton
from reslab.report.results import load_csvs

runs = block.load(RUNS, STUDY, PROFILE)  # with each net's family and budget
cost = block.load_cost(RUNS, STUDY, PROFILE)  # None until `reslab-cost` has measured the study
nets = block.aggregate(runs).merge(block.cost_summary(cost), on="label", how="left")  # the report's results.csv
block.results_table(nets)

# %% [markdown]
# ## Accuracy against parameters, FLOPs and measured cost
# Every net a point (mean test error over seeds, bar ± sd), colour = family, marker = budget; ringed and joined:
# the Pareto front, the nets no other net beats on both axes. Parameters and FLOPs are exact counts; images/s is
# this device's measurement (`reslab-cost`), "not measured" before it ran.

# %%
colors, markers = block.styles(nets)
axes = [
    ("params", "parameters (log)", True),
    ("flops", "forward FLOPs per image (log)", True),
    ("train_ips", "training images/s, measured (log)", True),
]
fronts = {
    "params": block.pareto_front(nets, "params"),
    "flops": block.pareto_front(nets, "flops"),
    "train_ips": block.pareto_front(nets, "train_ips", higher_is_better=True),
}
plots.pareto(nets, axes, fronts, colors, markers, None, f"profile {PROFILE}: test error against size, work and speed")

# %%
display(Markdown(block.cost_note(cost, STUDY, PROFILE)))
nets[["label", "params", "flops", "train_ips", "infer_ips", "peak_memory_bytes", "test_error_mean"]]

# %% [markdown]
# ## The verdicts, computed by the plan's rule
# Claim (a): "DenseNet does better than ResNet with fewer weights and less computation"; claim (b): "VoVNet keeps
# DenseNet's strengths while being faster and lighter". Paired over seeds, Holm within each family; a claim needs
# the nets it compares (both arms for A2).

# %%
contrasts = block.contrasts(runs, nets)
display(
    Markdown(
        "\n".join(
            [
                "**Claim (a)**",
                "",
                *block.claim_a(contrasts, nets, cost),
                "",
                "**Claim (b)**",
                "",
                *block.claim_b(contrasts, nets, cost),
            ]
        )
    )
)
skeleton.contrast_table(contrasts["per-block"]) if contrasts["per-block"] else print("no per-block contrasts")

# %% [markdown]
# ## Learning curves, one panel per budget
# Training error on fixed images dashed, test error solid, mean over seeds with a min-max band; the lr drop dotted.

# %%
curves = load_csvs(runs, "curves.csv")
if curves.empty:
    print("no curve probe in these runs")
else:
    display(
        plots.variant_curves(
            curves,
            block.curve_panels(nets),
            {l: colors[f] for l, f in zip(nets.label, nets.family)},
            None,
            [int(s) for s in runs.lr_drop_steps.iloc[0]],
            f"profile {PROFILE}: curve-probe error",
        )
    )

# %% [markdown]
# ## Gradient flow per block
# The backward-signal ratio (input side / output side of the RMS of dL/dh at each block output: residual blocks,
# dense layers and transitions, OSA modules) per net and probe step, median over seeds; then the relative update
# size by layer, one panel per family.

# %%
signal = load_csvs(runs, "signal.csv")
if signal.empty:
    print("the runs recorded no backward signal (probes.flow_points was 0)")
else:
    during = flow.training_signal(signal.assign(family=signal.label.str.rsplit("-", n=1).str[0]))
    display(during.assign(reading=during["median"].map(flow.sig.reading)))
updates = load_csvs(runs, "updates.csv")
if not updates.empty:
    display(plots.relative_updates(updates.assign(family=updates.label.map(dict(zip(nets.label, nets.family)))), None))

# %% [markdown]
# ## Layer responses (ResNet Fig. 7) of every net
# The std of every 3x3 layer's response after BN, in layer order (top) and sorted (bottom).

# %%
responses = load_csvs(runs, "responses.csv")
if responses.empty:
    print("no layer responses in these runs")
else:
    display(plots.layer_responses(responses, [l for l in nets.label if l in set(responses.label)], None))
