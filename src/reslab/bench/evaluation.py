"""How fast a trained net passes the eval set forward, by batch size: the measurement behind trainer.eval_batch_size.

Every run ends with forward-only passes over the whole eval set (the final evaluation, the Fig. 7 responses) and its
curve points are such passes too; in a CPU sweep they are a quarter of a lane's time (reslab.report.sweep_time). In
eval mode an image's output does not depend on the batch it is in, so the batch is a pure speed choice. Timed here
with the code a run uses (reslab.training.evaluate.evaluate over a DeviceLoader), at the threads of one sweep lane, on
random
images, each batch size in turn within a repeat, repeats interleaved.
"""

from __future__ import annotations

import statistics
import time

import torch
from omegaconf import DictConfig

from reslab.bench.data import as_tensors, random_cifar
from reslab.bench.timing import sync
from reslab.data import DeviceLoader
from reslab.data.loader import Normalizer
from reslab.models import build_model
from reslab.training.device import EVAL_BATCH
from reslab.training.evaluate import evaluate


def eval_rows(
    e: DictConfig, nets: dict, device: str, precision: str, channels_last: bool, seed: int, quick: bool = False
) -> dict | None:
    """{net label: {batch: [img/s per repeat]}} for the nets of `nets` (label -> model config), or None if off.
    quick (bench.steps set): one repeat, a quick check, not a figure."""
    if not e or not e.get("batches"):
        return None
    repeats = 1 if quick else int(e.repeats)
    dev = torch.device(device)
    threads = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(int(e.threads))
    try:
        images, labels = random_cifar(int(e.images), seed=seed)
        x, y = (t.to(dev) for t in as_tensors(images, labels))
        norm = Normalizer.fit(x, "pixel_mean")
        out = {}
        for label, model_cfg in nets.items():
            torch.manual_seed(seed)
            model = build_model(model_cfg).to(dev)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            loaders = {
                int(b): DeviceLoader(x, y, norm, int(b), train=False, channels_last=channels_last) for b in e.batches
            }
            model.eval()
            with torch.no_grad():  # warm-up: every batch shape's kernels once
                for loader in loaders.values():
                    model(next(iter(loader))[0])
            rates: dict[int, list[float]] = {b: [] for b in loaders}
            for r in range(repeats):
                order = list(loaders)
                for b in order[r % len(order) :] + order[: r % len(order)]:
                    sync(dev)
                    t0 = time.perf_counter()
                    evaluate(model, loaders[b], precision)
                    sync(dev)
                    rates[b].append(len(y) / (time.perf_counter() - t0))
            out[label] = {str(b): v for b, v in rates.items()}  # as JSON keeps them
            print(
                f"[bench evaluation {label}] "
                + ", ".join(f"b{b} {statistics.median(v):.0f}" for b, v in rates.items())
                + " img/s",
                flush=True,
            )
    finally:
        torch.set_num_threads(threads)
    return {
        "threads": int(e.threads) if device == "cpu" else threads,
        "images": int(e.images),
        "repeats": repeats,
        "auto": EVAL_BATCH[device],
        "img_s": out,
    }
