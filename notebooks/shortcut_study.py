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
# # Question 2: is the shortcut effective, and which one?
# The shortcut study (plan and decision rule: `experiments/shortcut.md`): no shortcut vs options A/B/C, and the
# clean identity vs the scaled, gated, convolved and dropped-out shortcuts and other activation placements of
# Identity Mappings. Read from `runs/<study>/<profile>/` with the loader, the paired statistics and the figures of
# its report (`reslab.report.shortcut`, what `reslab-report shortcut` writes to `reports/shortcut/`).
#
# Inputs: the parameters below, or the environment (`RESLAB_NB_RUNS`, `RESLAB_NB_PROFILE`, `RESLAB_NB_STUDY`).

# %% tags=["parameters"]
import os
from pathlib import Path

from reslab.paths import ROOT

RUNS = Path(os.environ.get("RESLAB_NB_RUNS", ROOT / "runs"))  # what `make sweep-shortcut` fills
PROFILE = os.environ.get("RESLAB_NB_PROFILE", "cpu")
STUDY = os.environ.get("RESLAB_NB_STUDY", "shortcut")  # or its pilot, shortcut-pilot

# %%
import pandas as pd
from IPython.display import Markdown, display

from reslab.report import flow, plots, published, shortcut
from reslab.report.results import load_csvs

runs = shortcut.load(RUNS, STUDY, PROFILE)  # labelled <variant>-<depth>, in the study's order
depths = sorted(runs.depth.unique())
main, deep = int(depths[0]), (int(depths[-1]) if len(depths) > 1 else None)
order = list(dict.fromkeys(runs.label))
variants = shortcut.aggregate(runs)  # one row per variant and depth, mean ± sd over seeds: the report's results.csv
variants[
    [
        "label",
        "group",
        "description",
        "n_seeds",
        "diverged",
        "train_error_mean",
        "test_error_mean",
        "test_error_std",
        "params",
        "extra_params",
    ]
]

# %% [markdown]
# ## Final error per variant
# One dot per seed, the black bar mean ± sd; one colour per variant in every figure.

# %%
colors = shortcut.label_colors(order)
plots.variant_errors(runs, order, colors, None, f"profile {PROFILE}: final error per run and variant")

# %% [markdown]
# ## The verdicts, computed by the plan's rule
# Paired over seeds, Holm within each family, a practical threshold; H1 (a shortcut beats none) and H3
# (pre-activation beats post-activation) are the primary family, every variant against identity-A the secondary.

# %%
primary, secondary = shortcut.contrasts(runs, main, deep)
display(Markdown("\n".join(shortcut.primary_lines(primary, main, deep) + [shortcut.h2_line(secondary)])))
shortcut.secondary_table(secondary, variants, published.load())

# %% [markdown]
# ## Learning curves, one panel per group of variants (each with identity-A)
# Training error on fixed images dashed, test error solid, mean over seeds; the lr drop dotted.

# %%
curves = load_csvs(runs, "curves.csv")
panels = shortcut.curve_panels(variants, depths)
drops = [int(s) for s in runs.lr_drop_steps.iloc[0]]
if curves.empty or not panels:
    print("no curve probe in these runs, or no variant beside identity-A")
else:
    display(plots.variant_curves(curves, panels, colors, None, drops, f"profile {PROFILE}: curve-probe error"))

# %% [markdown]
# ## Train mode against eval mode
# Last epoch's training error in train mode (BN batch statistics, dropout on) minus the eval-mode error on the
# curve probe's fixed training images; a gap far from identity-A's is a variant that behaves differently in the
# two modes (the report's outlier criterion).

# %%
shortcut.mode_gaps(runs).rename("train-mode − eval-mode training error (pp)")

# %% [markdown]
# ## Gradient flow per variant: vanishing, exploding or neither
# During training: the backward-signal ratio (input side / output side of the RMS of dL/dh per block) per variant
# and probe step, median over seeds. At initialisation (`make grad-flow`): the same, with the forward growth.

# %%
signal = load_csvs(runs, "signal.csv")
if signal.empty:
    print("the runs recorded no backward signal (probes.flow_points was 0)")
else:
    during = flow.training_signal(signal.assign(family=signal.label.str.rsplit("-", n=1).str[0]))
    display(during.assign(reading=during["median"].map(flow.sig.reading)))
init_csv = RUNS / "gradflow" / "signal_variants.csv"
if init_csv.is_file():
    display(shortcut.init_forward(pd.read_csv(init_csv)))
else:
    print(f"not measured at initialisation yet: `make grad-flow` writes {init_csv}")

# %% [markdown]
# ## Layer responses (ResNet Fig. 7) of the main depth's plain, identity, pre-activation and scaled nets

# %%
responses = load_csvs(runs, "responses.csv")
wanted = [f"{v}-{main}" for v in ("plain", shortcut.BASELINE, "preact", "scale-shortcut-0.5")]
shown = [l for l in wanted if not responses.empty and l in set(responses.label)]
if shown:
    display(plots.layer_responses(responses, shown, None))
else:
    print("no layer responses in these runs")
