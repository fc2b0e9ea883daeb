"""Clocks that exclude warm-up and wait for the device only at the edges of the timed window."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, warmup: int, steps: int) -> float:
    """Seconds per call of `fn`, `steps` calls timed after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


def loop_seconds(step: Callable, batches: Iterator, device: torch.device, warmup: int, steps: int) -> float:
    """Seconds of `steps` training steps, each fetching its batch from `batches`, after `warmup` untimed ones.

    The window opens when the last warm-up step has finished, so it holds exactly `steps` fetches and `steps`
    steps, as StepClock's window in a Lightning fit does."""
    for _ in range(warmup):
        step(*next(batches))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(*next(batches))
    sync(device)
    return time.perf_counter() - t0


def step_clock(warmup: int, steps: int, device: torch.device):
    """A Lightning callback timing `steps` training steps after `warmup`: from the end of the last warm-up step
    to the end of the last timed one (its `seconds`)."""
    import lightning as L

    class StepClock(L.Callback):
        def __init__(self):
            self.done, self.t0, self.seconds = 0, None, None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.done += 1
            if self.done == warmup:
                sync(device)
                self.t0 = time.perf_counter()
            elif self.done == warmup + steps:
                sync(device)
                self.seconds = time.perf_counter() - self.t0

    return StepClock()
