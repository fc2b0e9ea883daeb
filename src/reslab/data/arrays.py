"""The in-memory form of a CIFAR-style dataset: uint8 NCHW images and int64 labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass
class CifarArrays:
    train_x: torch.Tensor  # uint8, (N, 3, 32, 32)
    train_y: torch.Tensor  # int64, (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...] = CIFAR10_CLASSES
    meta: dict = field(default_factory=dict)  # source, format, checksum, ...

    def check(self) -> "CifarArrays":
        for name in ("train", "test"):
            x, y = getattr(self, f"{name}_x"), getattr(self, f"{name}_y")
            if x.dtype != torch.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != (3, 32, 32):
                raise ValueError(f"{name} images must be uint8 (N, 3, 32, 32), got {x.dtype} {tuple(x.shape)}")
            if len(x) != len(y):
                raise ValueError(f"{name}: {len(x)} images but {len(y)} labels")
        return self


def stratified_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of n examples with (as nearly as possible) equal counts per class.

    A fixed seed, independent of the training seed, so that every run of a study sees the same
    images and only the initialisation and batch order vary between seeds.
    """
    if n >= len(y):
        return torch.arange(len(y))
    g = torch.Generator().manual_seed(seed)
    classes = torch.unique(y)
    per_class = [torch.nonzero(y == c).flatten() for c in classes]
    per_class = [idx[torch.randperm(len(idx), generator=g)] for idx in per_class]
    k, extra = divmod(n, len(classes))
    chosen = [idx[: k + (1 if i < extra else 0)] for i, idx in enumerate(per_class)]
    return torch.sort(torch.cat(chosen)).values
