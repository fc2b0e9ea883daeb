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

RUNS, STUDY, PROFILE = Path("runs"), "depth", "quick"
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
