"""Random CIFAR-shaped data: a training step's speed does not depend on the pixels, so the bench needs no dataset.

One draw of uint8 images and labels per case, shared by every variant: the baseline reads it as the HWC uint8
array torchvision.datasets.CIFAR10 holds, reslab as the NCHW uint8 tensor its DeviceLoader holds."""

from __future__ import annotations

import numpy as np
import torch

NUM_CLASSES = 10


def images_needed(batch: int, warmup: int, steps: int, floor: int) -> int:
    # Two spare batches: Lightning fetches one batch ahead, and no timed step may fall on an epoch's end.
    return max((warmup + steps + 2) * batch, floor)


def random_cifar(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 32, 32, 3) uint8 images and (n,) int64 labels 0..9."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, NUM_CLASSES, n, dtype=np.int64))


def as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The NCHW uint8 tensor and labels reslab's loader reads (reslab.data.arrays' layout)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)
