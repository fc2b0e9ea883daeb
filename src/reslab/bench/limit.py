"""The machine's limit: the model alone stepping on one fixed batch (no data pipeline, no framework), and the
peak FLOP rate of a large matmul that model-FLOPs utilisation is stated against."""

from __future__ import annotations

import time

import torch

from reslab.bench.steps import autocast_dtype, optimizer, train_step
from reslab.bench.steps import batch as fixed_batch
from reslab.bench.timing import sync


def model_only(
    model: torch.nn.Module,
    opt: dict,
    batch: int,
    device: torch.device,
    channels_last: bool,
    precision: str,
    compiled: bool = False,
):
    """measure(warmup, steps) -> seconds of `steps` SGD steps on one fixed normalised batch (random pixels)."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    sgd = optimizer(model, opt)
    step_model = torch.compile(model) if compiled else model
    x, y = fixed_batch(batch, device, channels_last)
    dtype = autocast_dtype(precision)

    def measure(warmup: int, steps: int) -> float:
        step_model.train()
        for _ in range(warmup):
            train_step(step_model, sgd, x, y, dtype)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            train_step(step_model, sgd, x, y, dtype)
        sync(device)
        return time.perf_counter() - t0

    return measure


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, calls: int) -> float:
    """FLOP/s of the fastest of `calls` size x size @ size x size matmuls (2 size^3 FLOPs each), after one untimed."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(calls):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best
