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
# # Exploring reslab runs
# Reads the same files the reports are built from (`runs/<study>/<profile>/*/result.json` and CSVs),
# never W&B. `make notebooks` turns this file into an .ipynb; it also runs as a plain script.

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from reslab.report.results import load_csvs, load_results

RUNS, STUDY, PROFILE = Path("runs"), "depth", "cpu"
results = load_results(RUNS, STUDY, PROFILE)
results[["label", "seed", "status", "train_error", "test_error", "params", "flops", "wall_seconds"]]

# %% [markdown]
# ## Training error against depth, per family (the degradation question)

# %%
fig, ax = plt.subplots()
for family, g in results.groupby("family"):
    m = g.groupby("depth").train_error.agg(["mean", "min", "max"])
    ax.errorbar(m.index, m["mean"], yerr=[m["mean"] - m["min"], m["max"] - m["mean"]], marker="o", label=family)
ax.set_xlabel("depth")
ax.set_ylabel("final training error (%)")
ax.legend()

# %% [markdown]
# ## Per-layer gradient norms during training, for one run

# %%
grads = load_csvs(results, "grad_norms.csv")
if not grads.empty:
    one = grads[(grads.label == grads.label.iloc[0]) & (grads.kind == "main")]
    fig, ax = plt.subplots()
    for step, g in one.groupby("step"):
        ax.plot(g.layer, g.grad_norm, label=f"step {step}")
    ax.set_yscale("log")
    ax.set_xlabel("layer (input side = 0)")
    ax.set_ylabel("weight-gradient norm")
    ax.legend(fontsize=6, ncol=2)

# %% [markdown]
# ## Learning curves from step 0 (fixed-set error, eval mode), one line per run

# %%
curves = load_csvs(results, "curves.csv")
if not curves.empty:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, (family, g) in zip(axes, curves.groupby("family")):
        for (label, seed), r in g.groupby(["label", "seed"]):
            ax.plot(r.step, r.train_error, "--", lw=0.8, label=f"{label} s{seed}")
        ax.set_title(family)
        ax.set_xlabel("iterations")
    axes[0].set_ylabel("training error on the fixed set (%)")
    axes[1].legend(fontsize=5, ncol=2)
