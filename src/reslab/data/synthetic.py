"""A small, learnable, synthetic CIFAR-10 written in the official archive format (for tests)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from reslab.data import pickle_format
from reslab.data.arrays import CIFAR10_CLASSES, CifarArrays


def make(n_train: int = 500, n_test: int = 100, seed: int = 0, noise: float = 40.0) -> CifarArrays:
    """Each class is a fixed smooth colour template plus pixel noise: separable, but not trivially."""
    g = torch.Generator().manual_seed(seed)
    templates = F.interpolate(torch.rand(10, 3, 4, 4, generator=g) * 255, size=32, mode="bilinear", align_corners=False)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 10
        x = templates[y] + noise * torch.randn(n, 3, 32, 32, generator=g)
        return x.clamp(0, 255).round().to(torch.uint8), y.to(torch.int64)

    return CifarArrays(*draw(n_train), *draw(n_test), classes=CIFAR10_CLASSES).check()


def write(path: Path, n_train: int = 500, n_test: int = 100, seed: int = 0) -> Path:
    return pickle_format.write_archive(Path(path), make(n_train, n_test, seed))


def write_image_folder(root: Path, data: CifarArrays, fmt: str = "png") -> Path:
    from PIL import Image

    root = Path(root)
    for split in ("train", "test"):
        xs, ys = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        for i, (x, y) in enumerate(zip(xs, ys)):
            d = root / split / data.classes[int(y)]
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x.permute(1, 2, 0).numpy()).save(d / f"{i:05d}.{fmt}")
    return root


def main(argv=None) -> None:
    """`reslab-synth OUT.tar.gz [--train N] [--test N] [--seed S]`: write a synthetic archive."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=500)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(write(Path(a.out), a.train, a.test, a.seed))
