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
# # Walkthrough: train one small net, then look at its gradient flow and layer responses
# What every run of every study does, on one net: `reslab-train` trains it and leaves its files in
# `runs/<study>/<profile>/<net>-s<seed>/`; this notebook reads them back. With the `cpu` profile a ResNet-20 trains
# for 800 iterations on 6,400 images (minutes on a CPU); `RESLAB_NB_PROFILE=smoke` takes seconds (and
# means nothing). Run it again and it trains nothing: a finished run with the same config is skipped.
#
# Inputs: the parameters below, or the environment (`RESLAB_NB_RUNS`, `RESLAB_NB_PROFILE`, `RESLAB_NB_DATA`,
# `RESLAB_NB_STUDY`, `RESLAB_NB_MODEL`, `RESLAB_NB_DEPTH`, `RESLAB_NB_ARGS`).

# %% tags=["parameters"]
import os
from pathlib import Path

from reslab.paths import ROOT

RUNS = Path(os.environ.get("RESLAB_NB_RUNS", ROOT / "runs"))
PROFILE = os.environ.get("RESLAB_NB_PROFILE", "cpu")
DATA = os.environ.get("RESLAB_NB_DATA", "")  # as the Makefile's DATA; empty: the cache (.cache/), then the download
STUDY = os.environ.get("RESLAB_NB_STUDY", "walkthrough")  # the run lands in runs/walkthrough/<profile>/
MODEL = os.environ.get("RESLAB_NB_MODEL", "resnet")  # any conf/model/ name: plain, resnet, preact, densenet-bc, ...
DEPTH = int(os.environ.get("RESLAB_NB_DEPTH", "20"))
ARGS = os.environ.get("RESLAB_NB_ARGS", "")  # as the Makefile's ARGS: more Hydra overrides, e.g. "profile.epochs=1"

# %% [markdown]
# ## Train it
# The project's own entry point, as `make` calls it, from the repository root (where `.cache/` and relative
# paths live). W&B is off (`logger=none`): the run's files are its record.

# %%
import subprocess
import sys

command = [
    sys.executable,
    "-m",
    "reslab.train",
    f"study={STUDY}",
    f"profile={PROFILE}",
    f"model={MODEL}",
    f"model.depth={DEPTH}",
    f"paths.runs={RUNS.resolve()}",
    "logger=none",
]
if DATA:
    command.append(f"data.source={(ROOT / DATA).resolve()}")
command += ARGS.split()
print(" ".join(command[1:]))
done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
print(done.stdout[-3000:])
if done.returncode != 0:
    raise RuntimeError(f"reslab-train exited with {done.returncode}:\n{done.stderr[-3000:]}")

# %% [markdown]
# ## What a run leaves behind
# `result.json` is written last and marks the run finished; beside it the resolved config, the environment, and
# one CSV per probe. The reports and the study notebooks read them with the same loader as here.

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from reslab.probes import signal as sig
from reslab.report import flow, plots
from reslab.report.results import load_csvs, load_results

results = load_results(RUNS, STUDY, PROFILE)
one = results[(results.family == MODEL) & (results.depth == DEPTH) & (results.seed == 0)]
run = one.iloc[0]
print(run.run_dir, "\n", sorted(p.name for p in Path(run.run_dir).iterdir()))
run[["label", "params", "flops", "steps", "train_error", "test_error", "status", "wall_seconds", "device"]]

# %% [markdown]
# ## Learning curve
# `curves.csv`: error on fixed training (dashed) and test images (solid) in eval mode, from step 0.

# %%
plots.learning_curves(load_csvs(one, "curves.csv"), [MODEL], None, drops=[int(s) for s in run.lr_drop_steps])

# %% [markdown]
# ## Gradient flow, 1: the backward signal through the blocks
# `signal.csv`: at a few steps, on fixed batches, the RMS of the loss gradient dL/dh at every block output h (the
# stem is block 0), and the RMS of h itself (`act_rms`, the forward signal). A gradient that *vanishes* is much
# smaller on the input side (left) than on the output side; the reading compares the two ends against a factor of
# 10 either way.

# %%
signal = pd.read_csv(Path(run.run_dir) / "signal.csv")
fig, (back, fwd) = plt.subplots(1, 2, figsize=(11, 3.8))
for step, g in signal.groupby("step"):
    back.plot(g.rel_depth, g.grad_rms, marker="o", label=f"step {step}")
    fwd.plot(g.rel_depth, g.act_rms, marker="o", label=f"step {step}")
back.set(yscale="log", xlabel="relative depth (0 = input side)", ylabel="RMS of dL/dh (log)", title="backward")
fwd.set(yscale="log", xlabel="relative depth (0 = input side)", ylabel="RMS of h (log)", title="forward")
back.legend(fontsize=7)
display(fig)
plt.close(fig)
readings = pd.DataFrame(
    [{"step": s, **sig.summarise(g.sort_values("block").grad_rms.to_numpy())} for s, g in signal.groupby("step")]
)
readings.assign(reading=readings.ratio.map(sig.reading))

# %% [markdown]
# ## Gradient flow, 2: the weight gradients by layer
# `grad_norms.csv`: the norm of every conv/linear weight's gradient on a training batch at the probed steps
# (`kind` main: the stem, the 3x3 convs and the classifier; shortcut projections and gates apart). The ratio of
# the stem conv's to the last 3x3 conv's is what the depth study's plan calls vanishing below 1/100.

# %%
grads = pd.read_csv(Path(run.run_dir) / "grad_norms.csv")
main = grads[grads.kind == "main"]
fig, ax = plt.subplots(figsize=(7, 3.8))
for step, g in main.groupby("step"):
    ax.plot(g.layer, g.grad_norm, label=f"step {step}")
ax.set(yscale="log", xlabel="layer (input side = 0)", ylabel="weight-gradient norm (log)")
ax.legend(fontsize=6, ncol=2)
display(fig)
plt.close(fig)
ratio = flow.ratios(grads, ["step"])
ratio.assign(vanishing=ratio.ratio < flow.VANISHING_RATIO)

# %% [markdown]
# ## Layer responses (ResNet Fig. 7)
# `responses.csv`: after training, the std of every 3x3 layer's response (after BN, before the ReLU or the
# addition) over evaluation images, BN statistics recalibrated on training images. The paper finds a residual net's
# responses generally smaller than a plain net's: train `MODEL = "plain"` beside it, and the depth study notebook
# sets them side by side.

# %%
plots.layer_responses(load_csvs(one, "responses.csv"), [run.label], None)
