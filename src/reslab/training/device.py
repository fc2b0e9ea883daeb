"""Which device, precision and thread count a run uses: each of these changes its numbers."""

from __future__ import annotations

import os

import torch
from omegaconf import OmegaConf

from reslab.errors import ReslabError, bad_choice

DEVICES = ("auto", "cpu", "cuda")


def pick_device(choice: str) -> str:
    if choice not in DEVICES:
        raise bad_choice("device", choice, DEVICES)
    if choice == "cuda" and not torch.cuda.is_available():
        raise ReslabError("device='cuda' but no CUDA device is available; valid here: auto, cpu")
    return "cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu"


def pick_precision(choice: str, device: str) -> str:
    # bf16 autocast pays on tensor-core GPUs; on a CPU without AMX it is slower than fp32.
    if choice == "auto":
        return "bf16-mixed" if device == "cuda" and torch.cuda.is_bf16_supported() else "32-true"
    return choice


# Forward-only passes over the eval set (the final evaluation, the Fig. 7 responses, the curve points) at this batch
# when trainer.eval_batch_size is auto. A GPU wants large batches; a CPU core does not: at batch 500 a net's
# activations leave the caches (reports/bench/README.md, "Evaluation batch": one thread evaluates every bench net
# faster at 50, DenseNet-BC about twice as fast). In eval mode an image's output does not depend on its batch, so the
# batch changes the numbers by float rounding only (tests/test_fast_paths.py).
EVAL_BATCH = {"cpu": 50, "cuda": 500}


def pick_eval_batch(choice, device: str) -> int:
    return EVAL_BATCH[device] if choice == "auto" else int(choice)


def usable_cores() -> int:
    """The cores this process may run on: a Slurm job's (or a cpuset's) share of the node, not the whole node."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this platform (macOS)
        return os.cpu_count() or 1


def threads_for(cfg) -> int:
    """`threads` (per process), or the usable cores shared out among the `jobs` parallel runs and, within a run on
    several devices, among its processes (`trainer.devices`)."""
    procs = max(1, int(cfg.get("jobs") or 1)) * max(1, int(OmegaConf.select(cfg, "trainer.devices", default=1) or 1))
    return int(cfg.get("threads") or max(1, usable_cores() // procs))


def set_threads(cfg) -> int:
    """Set torch's thread count; return the count torch actually uses (part of the run's identity)."""
    torch.set_num_threads(threads_for(cfg))
    return torch.get_num_threads()
