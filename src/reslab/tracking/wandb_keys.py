"""The names reslab's runs log to W&B: one contract shared by the logger, the dashboards and their tests.

Per-epoch metrics carry the same names as the columns of a run's metrics.csv, so a W&B chart and a report's table
read the same quantity. Everything is logged against Lightning's step axis (STEP)."""

from __future__ import annotations

STEP = "trainer/global_step"  # x-axis of every series (Lightning's WandbLogger adds it to each log call)

# Per epoch, names as in metrics.csv.
EPOCH = "epoch"
TRAIN_ERROR, TRAIN_LOSS = "train_error", "train_loss"
TEST_ERROR, TEST_LOSS = "test_error", "test_loss"
EPOCH_KEYS = (EPOCH, TRAIN_ERROR, TRAIN_LOSS, TEST_ERROR, TEST_LOSS)

# Every `logger.log_every_n_steps` optimizer steps: the mean training loss over those steps and the learning rate.
STEP_LOSS, STEP_LR = "step/train_loss", "step/lr"

# At every gradient-probe point: the per-layer gradient norm (grad_norms.csv), one series per weight layer;
# at every flow-probe point: the relative weight update ||dW|| / ||W|| per layer (updates.csv).
GRAD_NORM_PREFIX = "grad_norm/"
UPDATE_PREFIX = "update/"


def layer_id(index: int, name: str) -> str:
    """A weight layer as its series names it: its index from the input side (the CSVs' `layer`), zero-padded so
    that sorting the series by name orders them input to output, then its module name (the CSVs' `name`),
    e.g. "003-stages.0.1.branch.0"."""
    return f"{int(index):03d}-{name}"


def grad_norm_key(layer: str) -> str:
    return GRAD_NORM_PREFIX + layer


def update_key(layer: str) -> str:
    return UPDATE_PREFIX + layer
