"""Positive controls for the gradient scale coefficient (reslab.probes.signal): small CIFAR-shaped chains whose
per-block GSC is known from how they are built, so that the probe can be checked to read them as built.

The controls of the RMS ratio (plain nets without BN, He init times 0.5 or 2) are no GSC controls: a ReLU net
without BN or biases is positively homogeneous, so scaling every weight by c scales every activation and
gradient of a layer by a power of c and leaves each relative sensitivity, the GSC, as it was. What changes a
GSC is how a block treats a *relative* change of its input:

- `CenteredAbsChain` (built to explode): each block is conv -> |.| -> subtract the per-example mean. For a
  zero-mean Gaussian pre-activation z, |z| keeps the norm, and removing its mean removes the fraction
  E|z|^2 / E z^2 = 2/pi of it, while the Jacobian (sign flips, a projection that drops one direction) keeps
  the quadratic-mean norm of the conv. So each block multiplies a relative change by 1/sqrt(1 - 2/pi) ~ 1.66
  (the mechanism by which BN-ReLU nets explode, Yang et al. 2019, at its strongest: |.| in place of ReLU).
- `OrderedChain` (built to vanish): each block is relu(a * conv(h) + 1) with a < 1: a contraction to a fixed
  point (the "ordered phase" of mean-field theory), where the input-dependent part of h shrinks by about a per
  block while |h| stays near its fixed point, so the GSC per block is about a.
- `IdentityChain`: every block is the identity, GSC exactly 1.

Each exposes `signal_points()` (stem and blocks, input side first), as reslab.probes.signal expects.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

EXPLODE_RATE = 1 / math.sqrt(1 - 2 / math.pi)  # the per-block GSC CenteredAbsChain is built to have


def _conv(cin: int, cout: int, gain: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
    # Unit-gain fan-in init (a linear layer's): the quadratic-mean norm of the conv's Jacobian is about 1.
    nn.init.normal_(conv.weight, std=gain / math.sqrt(conv.weight[0].numel()))
    return conv


class _Chain(nn.Module):
    def __init__(self, blocks: list[nn.Module], width: int, num_classes: int = 10):
        super().__init__()
        self.stem = _conv(3, width)
        self.blocks = nn.ModuleList(blocks)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(width, num_classes)

    def signal_points(self):
        return [("stem", self.stem)] + [(f"blocks.{i}", b) for i, b in enumerate(self.blocks)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for b in self.blocks:
            h = b(h)
        return self.fc(torch.flatten(self.pool(h), 1))


class _CenteredAbs(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv = _conv(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.conv(h).abs()
        a = a - a.mean(dim=(1, 2, 3), keepdim=True)
        # Restores the forward size (the GSC does not see a constant factor; float32 does, over many blocks).
        return a * EXPLODE_RATE


class CenteredAbsChain(_Chain):
    """Built to explode: every block multiplies a relative change by about EXPLODE_RATE."""

    def __init__(self, blocks: int = 12, width: int = 16):
        super().__init__([_CenteredAbs(width) for _ in range(blocks)], width)


class _Ordered(nn.Module):
    def __init__(self, width: int, a: float):
        super().__init__()
        self.conv, self.a = _conv(width, width), a

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.a * self.conv(h) + 1.0)


class OrderedChain(_Chain):
    """Built to vanish: every block contracts toward a fixed point by about `a`."""

    def __init__(self, blocks: int = 12, width: int = 16, a: float = 0.5):
        super().__init__([_Ordered(width, a) for _ in range(blocks)], width)


class IdentityChain(_Chain):
    """Every block is the identity: the GSC of each is exactly 1."""

    def __init__(self, blocks: int = 4, width: int = 16):
        super().__init__([nn.Identity() for _ in range(blocks)], width)


CONTROLS = {"explode": CenteredAbsChain, "vanish": OrderedChain}
