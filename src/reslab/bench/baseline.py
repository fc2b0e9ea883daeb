"""The loop a competent user writes from the PyTorch CIFAR-10 tutorial, and the same data in a default Lightning fit.

- Data: torchvision.datasets.CIFAR10's __getitem__ (an HWC uint8 array, one PIL image per item) through
  RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize (per-channel mean/std of the images);
  DataLoader(batch, shuffle=True, num_workers=0 or 2, drop_last=True).
- Step: model.train(); inputs.to(device); optimizer.zero_grad(); loss = criterion(model(inputs), labels);
  loss.backward(); optimizer.step(); running_loss += loss.item() (the tutorial's running loss, a host sync per step).
- Lightning: a LightningModule whose training_step computes and self.log()s the loss, fitted by L.Trainer with its
  defaults (progress bar, model summary, logger, checkpointing) except max_steps, the accelerator of the bench's
  device and a temporary default_root_dir.
fp32, contiguous (NCHW): the tutorial's settings.
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from reslab.bench.timing import loop_seconds, step_clock


class ArrayCIFAR(Dataset):
    """torchvision.datasets.CIFAR10 without its files: the same __getitem__ over an (N, 32, 32, 3) uint8 array."""

    def __init__(self, data: np.ndarray, targets: np.ndarray, transform):
        self.data, self.targets, self.transform = data, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], int(self.targets[index])
        return self.transform(Image.fromarray(img)), target


def tutorial_transform(images: np.ndarray, pad: int = 4) -> transforms.Compose:
    mean = (images.reshape(-1, 3).mean(0) / 255).tolist()
    std = (images.reshape(-1, 3).std(0) / 255).tolist()
    return transforms.Compose(
        [
            transforms.RandomCrop(32, padding=pad),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


def tutorial_loader(images: np.ndarray, labels: np.ndarray, batch: int, workers: int, seed: int = 0) -> DataLoader:
    return DataLoader(
        ArrayCIFAR(images, labels, tutorial_transform(images)),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )


def sgd(model: torch.nn.Module, opt: dict) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(),
        lr=opt["lr"],
        momentum=opt["momentum"],
        weight_decay=opt["weight_decay"],
        nesterov=bool(opt["nesterov"]),
    )


def torch_loop(model: torch.nn.Module, opt: dict, loader: DataLoader, device: torch.device):
    """measure(warmup, steps) -> seconds of `steps` steps of the tutorial's loop (a new epoch iterator each call:
    its workers start during the warm-up)."""
    model.to(device)
    optimizer = sgd(model, opt)
    criterion = torch.nn.CrossEntropyLoss()
    running = [0.0]

    def step(inputs, labels):
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        running[0] += loss.item()

    def measure(warmup: int, steps: int) -> float:
        model.train()
        return loop_seconds(step, iter(loader), device, warmup, steps)

    return measure


def lightning_module(model: torch.nn.Module, opt: dict):
    import lightning as L

    class TutorialModule(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self.model(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return sgd(self.model, opt)

    return TutorialModule()


def lightning_fit(model: torch.nn.Module, opt: dict, loader: DataLoader, device: torch.device):
    """measure(warmup, steps) -> seconds of `steps` steps of a default Lightning fit (a new Trainer each call)."""
    import lightning as L

    module = lightning_module(model, opt)

    def measure(warmup: int, steps: int) -> float:
        clock = step_clock(warmup, steps, device)
        with tempfile.TemporaryDirectory() as root:
            trainer = L.Trainer(
                accelerator="gpu" if device.type == "cuda" else "cpu",
                devices=1,
                max_steps=warmup + steps,
                default_root_dir=root,
                callbacks=[clock],
            )
            trainer.fit(module, train_dataloaders=loader)
        return clock.seconds

    return measure
