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
# # Question 1: is deeper better? Plain vs residual nets across depth
# The depth study (plan and decision rule: `experiments/depth.md`) read from `runs/<study>/<profile>/` with the
# loader, the statistics and the figures of its report (`reslab.report.depth`, what `reslab-report depth` writes
# to `reports/depth/`), never from W&B. The figures are the report's, shown here instead of written to PNG.
#
# Inputs: the parameters below, or the environment (`RESLAB_NB_RUNS`, `RESLAB_NB_PROFILE`, `RESLAB_NB_STUDY`).

# %% tags=["parameters"]
import os
from pathlib import Path

from reslab.paths import ROOT

RUNS = Path(os.environ.get("RESLAB_NB_RUNS", ROOT / "runs"))  # what `make sweep-depth` fills
PROFILE = os.environ.get("RESLAB_NB_PROFILE", "cpu")
STUDY = os.environ.get("RESLAB_NB_STUDY", "depth")  # or a pilot of the same design, e.g. depth-pilot-linwarm

# %%
import pandas as pd
from IPython.display import Markdown, display

from reslab.report import depth, flow, plots
from reslab.report.results import load_csvs, load_results

results = load_results(RUNS, STUDY, PROFILE)  # refuses runs that differ in profile, data copy or device type
curves = load_csvs(results, "curves.csv")
per_run = depth.run_rows(results, curves)  # one row per run: the report's runs.csv
nets = depth.aggregate(per_run)  # one row per net, mean ± sd over seeds: its results.csv
nets[
    [
        "label",
        "n_seeds",
        "n_ok",
        "train_error_mean",
        "train_error_std",
        "test_error_mean",
        "test_error_std",
        "at_chance",
        "n_spikes",
    ]
]

# %% [markdown]
# ## Degradation: final training error against depth, per family
# Every dot one run (seed), the line the mean over seeds. Degradation is a plain line that rises with depth; the
# shortcut's effect is the gap between the lines.

# %%
plots.error_vs_depth(per_run, None, title=f"profile {PROFILE}: final error by depth")

# %% [markdown]
# ## What happened, and the verdicts computed by the plan's rule
# Seasonal Kendall trend test over depth (seeds as blocks), Holm over the three hypotheses, a practical threshold;
# a hypothesis needs at least two seeds with every depth.

# %%
steps = int(results.steps_planned.max())
tests = depth.analyse(per_run)
display(
    Markdown(
        "\n".join("- " + line for line in depth.headline(per_run, nets, tests, steps, int(results.batch_size.iloc[0])))
    )
)
display(Markdown("\n".join(depth.verdict_lines(per_run, tests, steps))))
display(Markdown("\n".join(depth.secondary_lines(per_run)) or "_No secondary tests (fewer than two seeds)._"))

# %% [markdown]
# ## Learning curves (ResNet Fig. 6)
# Training error on fixed images dashed, test error solid, from step 0; one colour per depth, the lr drops dotted.

# %%
drops = sorted({int(x) for v in results.lr_drop_steps.dropna() for x in v})
families = [f for f in depth.FAMILIES if f in set(curves.family)] if not curves.empty else []
if families:
    display(
        plots.learning_curves(
            curves, families, None, drops=drops, title=f"profile {PROFILE}: error on fixed image sets, mean over seeds"
        )
    )
else:
    print("no curve probe in these runs (curves.csv)")

# %% [markdown]
# ## Gradient flow
# ### During training: the backward signal
# RMS of dL/dh at every block output, on fixed batches at a few steps of every run; the ratio is input side / output
# side. Reading of the median over seeds: *vanishing* below 1/10, *exploding* above 10, else *neither*.

# %%
signal = load_csvs(results, "signal.csv")
if signal.empty:
    print("the runs recorded no backward signal (probes.flow_points was 0)")
else:
    during = flow.training_signal(signal)
    display(during.assign(reading=during["median"].map(flow.sig.reading)))

# %% [markdown]
# ### During training: weight-gradient norms by layer and the first/last ratio
# The norm of every conv/linear weight's gradient at the last probed step (median over seeds, min-max shaded);
# then the first-conv / last-conv ratio at the first and the last probe, against the plan's vanishing threshold.

# %%
grads = load_csvs(results, "grad_norms.csv")
if grads.empty:
    print("no gradient probes in these runs (probes.grad_norms was off)")
else:
    last = grads[(grads.kind == "main") & (grads.step == grads.groupby("label").step.transform("max"))]
    display(plots.grad_profiles(last.assign(panel=last.family), None, "weight-gradient norm at the last probe"))
    display(
        plots.ratio_vs_depth(
            flow.training_ratios(grads), None, flow.VANISHING_RATIO, "during training (first and last probe)"
        )
    )

# %% [markdown]
# ### Relative update size by layer
# |w_after − w_before| / |w_before| at the probed steps; early layers that "learn slowly" sit below the output side.

# %%
updates = load_csvs(results, "updates.csv")
if updates.empty:
    print("no update probe in these runs")
else:
    display(plots.relative_updates(updates, None))

# %% [markdown]
# ### At initialisation (`make grad-flow`)
# The same statistic on untrained nets with and without BN, and controls built to vanish or explode.

# %%
init_csv = RUNS / "gradflow" / "signal.csv"
if init_csv.is_file():
    at_init = pd.read_csv(init_csv)
    display(flow.signal_readings(flow.signal_summary(at_init)))
    display(plots.signal_profiles(at_init[at_init.control.isna() | (at_init.control == "")], None, flow.sig.BAND))
else:
    print(f"not measured yet: `make grad-flow` writes {init_csv}")

# %% [markdown]
# ## Layer responses of the trained nets (ResNet Fig. 7)
# The std of every 3x3 layer's response (after BN, before the ReLU or the addition), in layer order (top) and
# sorted (bottom); dashed plain, solid residual. The paper finds the residual nets' responses smaller.

# %%
responses = load_csvs(results, "responses.csv")
shown = [l for l in depth.fig7_labels(results) if not responses.empty and l in set(responses.label)]
if shown:
    display(plots.layer_responses(responses, shown, None))
else:
    print("no layer responses in these runs")
