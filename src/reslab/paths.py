"""Where the project's config lives (next to src/, in the repository), and the name Hydra gives its training job."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
# Hydra's job name of reslab-train (the name of the module that holds its task function, reslab/train.py).
# reslab-summary/-cost share its config but are other jobs: the sweep guard and the stop forwarding act on this one.
TRAIN_JOB = "train"
