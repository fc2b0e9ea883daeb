"""Wide ResNet for CIFAR (Zagoruyko & Komodakis 2016, "Wide Residual Networks"): WRN-d-k.

Net: 3x3 conv (16) -> 3 stages of n pre-activation basic blocks with 16k/32k/64k channels at
32/16/8 (the first block of stages 2 and 3 has stride 2) -> BN-ReLU -> global average pool ->
linear. depth d = 6n + 4: the stem, 2n 3x3 convs per stage, the classifier, and the two 1x1
shortcut convs where the width grows (the paper's count; a WRN-d-1 is the pre-activation ResNet-(d-2)
with projection shortcuts).

Block (the paper's B(3,3), Fig. 1c/d): BN-ReLU-3x3 conv-BN-ReLU-[dropout]-3x3 conv, then add. The
shortcut is the identity, or where the shape changes a 1x1 conv (no BN) on the block's
*pre-activated* input, as in the authors' code (szagoruyko/wide-residual-networks) and the PyTorch
port checked in tests/test_descendants.py (xternalz/WideResNet-pytorch).

  widen_factor  k: the paper's integer widths, or any multiple of 1/16 (every stage width 16k is then an
                integer), so that the budget matcher can set width as finely as for the other families
  dropout       the paper's dropout between the two convs (0.3 for WRN-28-10-dropout); 0 = none, the
                block study's default (no other family there has dropout)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reslab.errors import ReslabError
from reslab.models.layers import ResponseTap, conv1x1, conv3x3, he_init
from reslab.models.registry import register

STEM = 16  # the paper's first conv, whatever k


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def blocks_per_stage(depth) -> int:
    if not _is_int(depth) or depth < 10 or (depth - 4) % 6:
        raise ReslabError(
            f"model.depth={depth!r} is not 6n+4 with n >= 1 (WRN-d-k); valid depths: 10, 16, 22, 28, 40, ..."
        )
    return (depth - 4) // 6


def stage_widths(widen_factor) -> list[int]:
    ok = (
        not isinstance(widen_factor, bool)
        and isinstance(widen_factor, (int, float))
        and widen_factor > 0
        and float(16 * widen_factor).is_integer()
    )
    if not ok:
        raise ReslabError(
            f"model.widen_factor={widen_factor!r} must be a positive multiple of 1/16 (so that 16k "
            "channels is an integer), e.g. 1, 1.25, 4, 10"
        )
    return [int(16 * widen_factor) * m for m in (1, 2, 4)]


class WideBasic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, dropout: float):
        super().__init__()
        self.pre = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU())
        self.branch = nn.Sequential(
            conv3x3(cin, cout, stride),
            nn.BatchNorm2d(cout),
            ResponseTap(),
            nn.ReLU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            conv3x3(cout, cout),
            ResponseTap(),
        )  # pre-activation: the second conv's output goes straight to the add
        # Only where the shape changes; it reads the pre-activated input, so the identity path stays clean.
        self.shortcut = conv1x1(cin, cout, stride) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pre(x)
        return self.branch(a) + (x if self.shortcut is None else self.shortcut(a))


class WideResNet(nn.Module):
    def __init__(self, depth: int = 28, widen_factor=10, dropout: float = 0.0, num_classes: int = 10):
        super().__init__()
        n, widths = blocks_per_stage(depth), stage_widths(widen_factor)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ReslabError(f"model.dropout={dropout!r} must be in [0, 1); 0 = no dropout, the paper uses 0.3")
        self.stem = nn.Sequential(conv3x3(3, STEM))
        stages, cin = [], STEM
        for s, width in enumerate(widths):
            stages.append(
                nn.Sequential(
                    *[
                        WideBasic(cin if i == 0 else width, width, 2 if s > 0 and i == 0 else 1, float(dropout))
                        for i in range(n)
                    ]
                )
            )
            cin = width
        self.stages = nn.Sequential(*stages)
        self.final = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final(self.stages(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


@register("wrn")
def wrn(**opts) -> WideResNet:
    """Zagoruyko & Komodakis 2016 WRN-d-k (depth d, widen factor k)."""
    return WideResNet(**opts)
