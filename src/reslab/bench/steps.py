"""The training step that `reslab-cost` and the bench's model-alone limit both time: one definition, so that the two
measure the same thing (random CIFAR-shaped data, the run's SGD, autocast as the run's precision)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

NUM_CLASSES = 10


def autocast_dtype(precision: str):
    """The autocast dtype of a Lightning precision string; None = full precision."""
    return torch.bfloat16 if precision.startswith("bf16") else torch.float16 if precision.startswith("16") else None


def batch(size: int, device: torch.device, channels_last: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random CIFAR-shaped images and labels: a net's speed and memory do not depend on the pixels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, NUM_CLASSES, (size,), generator=g).to(device)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y


def optimizer(model: torch.nn.Module, opt: dict) -> torch.optim.Optimizer:
    # The training run's optimizer: momentum buffers are part of a step's memory and time.
    return torch.optim.SGD(
        model.parameters(),
        lr=opt.get("lr", 0.01),
        momentum=opt.get("momentum", 0.9),
        weight_decay=opt.get("weight_decay", 1e-4),
        nesterov=bool(opt.get("nesterov", False)),
    )


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x, y, dtype) -> None:
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        loss = F.cross_entropy(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
