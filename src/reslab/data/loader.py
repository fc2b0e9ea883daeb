"""Batches from tensors that live on the training device, augmented there.

Small CIFAR nets are input-bound: a DataLoader with worker processes spends more time
collating and copying than the model spends computing. Here the whole split is one uint8
tensor on the device; each batch is indexed, normalised, padded, cropped and flipped with a
few batched tensor ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reslab.data.arrays import CifarArrays, stratified_subset
from reslab.errors import bad_choice

NORMALIZATIONS = ("pixel_mean", "channel")
SPLITS = ("test", "val")


@dataclass
class Normalizer:
    """x/255 minus the per-pixel training mean (the paper), or per-channel mean/std."""

    mean: torch.Tensor  # (3, 32, 32) or (3, 1, 1), in [0, 1] units
    std: torch.Tensor

    @classmethod
    def fit(cls, train_x: torch.Tensor, kind: str) -> "Normalizer":
        x = train_x.double() / 255
        if kind == "pixel_mean":
            return cls(x.mean(0).float(), torch.ones(1, 1, 1))
        if kind == "channel":
            return cls(x.mean((0, 2, 3)).float().view(3, 1, 1), x.std((0, 2, 3)).float().view(3, 1, 1))
        raise bad_choice("data.normalize", kind, NORMALIZATIONS)

    def to(self, device) -> "Normalizer":
        return Normalizer(self.mean.to(device), self.std.to(device))

    def __call__(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return (x_uint8.float().div_(255) - self.mean) / self.std


def crop_flip_draws(b: int, pad: int, flip: bool, g: torch.Generator, device) -> tuple:
    """The random numbers of one batch's augmentation: row and column offsets, which images to mirror."""
    oy = torch.randint(0, 2 * pad + 1, (b,), device=device, generator=g)
    ox = torch.randint(0, 2 * pad + 1, (b,), device=device, generator=g)
    mirrored = torch.rand(b, device=device, generator=g) < 0.5 if flip else None
    return oy, ox, mirrored


def random_crop_flip(
    x: torch.Tensor, pad: int, flip: bool, g: torch.Generator, of: int | None = None, part: slice = slice(None)
) -> torch.Tensor:
    """Pad with zeros (the mean, after normalisation), take a random 32x32 crop, maybe mirror.

    One gather for the whole batch. The result is laid out NHWC, i.e. channels_last. `x` may be the `part`
    of a batch of `of` images (one DDP rank's share): it gets that part of the whole batch's draws.
    """
    b, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    oy, ox, mirrored = (d[part] if d is not None else None for d in crop_flip_draws(of or b, pad, flip, g, x.device))
    cols = ox[:, None] + torch.arange(w, device=x.device)
    if flip:
        cols = torch.where(mirrored[:, None], cols.flip(1), cols)
    rows = oy[:, None] + torch.arange(h, device=x.device)
    out = xp[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


class DeviceLoader:
    """An iterable of (images, labels) batches; a new shuffle and augmentation each epoch.

    The batch order and augmentation of epoch e depend only on (seed, e), so a run is
    reproducible whatever else shares the device's random state, and a run resumed from a checkpoint
    (`resume_at`) gets the batches an uninterrupted run gets.

    Under DDP (`world` > 1, training only) every rank draws the same order and augmentation, and rank r
    yields the r-th of `world` equal parts of each batch of `batch_size` (the global batch): the ranks
    together see exactly the images, crops and flips of the one-process run.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        normalize: Normalizer,
        batch_size: int,
        train: bool,
        seed: int = 0,
        pad: int = 4,
        flip: bool = True,
        channels_last: bool = False,
        rank: int = 0,
        world: int = 1,
    ):
        if train and batch_size % world:
            raise ValueError(f"batch_size={batch_size} does not split into {world} equal parts")
        self.x, self.y, self.normalize = x, y, normalize.to(x.device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        share = batch_size // world if train else batch_size
        self.part = slice(rank * share, (rank + 1) * share) if train else slice(None)
        self.pad, self.flip, self.channels_last = pad, flip, channels_last
        self.epoch = 0
        self.skip = 0  # batches of the next epoch already trained (set by resume_at)

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Start the next iteration at batch `batches_done` of epoch `epoch` (0-based), as if the earlier
        batches had been drawn: their random numbers are drawn again and thrown away."""
        self.epoch, self.skip = int(epoch), int(batches_done)

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def __iter__(self):
        device = self.x.device
        if self.train:
            g = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(len(self.x), device=device, generator=g)
        else:
            g, order = None, torch.arange(len(self.x), device=device)
        self.epoch += 1
        start, self.skip = self.skip, 0
        for _ in range(start if self.train else 0):
            crop_flip_draws(self.batch_size, self.pad, self.flip, g, device)
        for i in range(start if self.train else 0, len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size][self.part]
            xb = self.normalize(self.x[idx])
            if self.train:
                xb = random_crop_flip(xb, self.pad, self.flip, g, self.batch_size, self.part)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, self.y[idx]


def split_arrays(
    data: CifarArrays, split: str, train_subset: int | None, eval_subset: int | None, subset_seed: int = 0
):
    """(train_x, train_y, eval_x, eval_y, eval_name) for the 50k/10k test or 45k/5k val split."""
    if split == "test":
        tx, ty, ex, ey = data.train_x, data.train_y, data.test_x, data.test_y
    elif split == "val":
        # The paper picked its schedule on 45k/5k; the held-out 5k are a fixed, class-balanced draw.
        held = stratified_subset(data.train_y, len(data.train_y) // 10, seed=12345)
        keep = torch.ones(len(data.train_y), dtype=torch.bool)
        keep[held] = False
        tx, ty, ex, ey = data.train_x[keep], data.train_y[keep], data.train_x[held], data.train_y[held]
    else:
        raise bad_choice("data.split", split, SPLITS)
    if train_subset:
        idx = stratified_subset(ty, train_subset, subset_seed)
        tx, ty = tx[idx], ty[idx]
    if eval_subset:
        idx = stratified_subset(ey, eval_subset, subset_seed)
        ex, ey = ex[idx], ey[idx]
    return tx, ty, ex, ey, split
