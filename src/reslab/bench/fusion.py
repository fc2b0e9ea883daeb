"""Seed fusion, measured before it is built: would S seeds of one net train faster as one grouped network?

The S nets' convolutions become one convolution with groups=S (S*C channels, BN over S*C channels, a grouped
classifier): channels never mix, so each seed would stay an independent model, and one step would carry S batches.
That pays only if the grouped kernels run S small nets faster than S steps of the small kernels one after another.
Timed on ResNet-20's convolution stack (19 3x3 convolutions with BN and ReLU, widths 16/32/64, strides 1/2/2, the
linear classifier; the option A shortcuts are a parameter-free add and left out of both variants alike), a full SGD
step (forward, backward, update), at the threads of one sweep lane, S separate nets vs one grouped net, repeats
interleaved. reslab adopts fusion only if this measures it faster (it is not part of reslab's training today).
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn
from omegaconf import DictConfig

WIDTHS = ((16, 1), (32, 2), (64, 2))  # ResNet-20: 3 stages of 3 blocks (6 convolutions), first stride per stage
PER_STAGE = 6
CLASSES = 10


def conv_stack(seeds: int) -> nn.Sequential:
    """ResNet-20's convolutions for `seeds` nets side by side (groups=seeds); seeds=1 is one plain net."""
    s, cin = seeds, 16
    layers: list[nn.Module] = [
        nn.Conv2d(3 * s, 16 * s, 3, 1, 1, bias=False, groups=s),
        nn.BatchNorm2d(16 * s),
        nn.ReLU(),
    ]
    for width, stride in WIDTHS:
        for i in range(PER_STAGE):
            layers += [
                nn.Conv2d(cin * s, width * s, 3, stride if i == 0 else 1, 1, bias=False, groups=s),
                nn.BatchNorm2d(width * s),
                nn.ReLU(),
            ]
            cin = width
    # The classifier as a grouped 1x1 convolution: seed k's logits read only seed k's features.
    layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(64 * s, CLASSES * s, 1, groups=s), nn.Flatten()]
    return nn.Sequential(*layers)


def sgd_step(seeds: int, batch: int, gen: torch.Generator):
    net = conv_stack(seeds).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(batch, 3 * seeds, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (seeds * batch,), generator=gen)

    def step():
        logits = net(x).view(batch, seeds, CLASSES).transpose(0, 1).reshape(-1, CLASSES)  # seed-major, as y
        loss = nn.functional.cross_entropy(logits, y, reduction="sum") / batch  # each seed's mean loss, summed
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def fusion_rows(f: DictConfig, device: str, quick: bool) -> dict | None:
    """{"separate": [img/s per repeat], "grouped": [...]}: S nets trained one after another vs grouped (CPU only)."""
    if not f or device != "cpu":
        return None
    seeds, batch = int(f.seeds), int(f.batch)
    steps, repeats = (1, 1) if quick else (int(f.steps), int(f.repeats))
    threads = torch.get_num_threads()
    torch.set_num_threads(int(f.threads))
    try:
        gen = torch.Generator().manual_seed(0)
        variants = {
            "separate": [sgd_step(1, batch, gen) for _ in range(seeds)],
            "grouped": [sgd_step(seeds, batch, gen)],
        }
        for fns in variants.values():  # warm-up
            for fn in fns:
                fn()
        rates: dict[str, list[float]] = {k: [] for k in variants}
        for r in range(repeats):
            for name in list(variants) if r % 2 == 0 else list(variants)[::-1]:
                t0 = time.perf_counter()
                for _ in range(steps):
                    for fn in variants[name]:
                        fn()
                rates[name].append(seeds * batch * steps / (time.perf_counter() - t0))
    finally:
        torch.set_num_threads(threads)
    print(
        "[bench fusion] " + ", ".join(f"{k} {statistics.median(v):.0f}" for k, v in rates.items()) + " img/s",
        flush=True,
    )
    return {
        "seeds": seeds,
        "batch": batch,
        "steps": steps,
        "repeats": repeats,
        "threads": int(f.threads),
        "img_s": rates,
    }
