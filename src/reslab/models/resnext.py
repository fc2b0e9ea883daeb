"""ResNeXt for CIFAR (Xie et al. 2017, "Aggregated Residual Transformations for Deep Neural Networks",
section 5.3 / Table 7): ResNeXt-29 (C x dd).

Net: 3x3 conv (64) -> 3 stages of n bottleneck blocks with outputs 256/512/1024 at 32/16/8 (the
first block of stages 2 and 3 has stride 2) -> global average pool -> linear. depth = 9n + 2
(the paper's CIFAR nets are all 29 layers: n = 3).

Block (the paper's form (c), Fig. 3): 1x1 conv (C*d) -BN-ReLU- grouped 3x3 conv (C groups of d
channels) -BN-ReLU- 1x1 conv (out) -BN, plus the shortcut, then ReLU (post-activation, as the CIFAR
ResNet). The inner width C*d doubles with each stage, as the outputs do. Shortcut: identity, or a
1x1 conv + BN projection where the shape changes (including the first block, 64 -> 256), as in the
authors' code (facebookresearch/ResNeXt) and the PyTorch port checked in tests/test_descendants.py
(prlz77/ResNeXt.pytorch).

  cardinality   C, the number of groups (the paper: 8 or 16 on CIFAR)
  group_width   d, the channels of one group in stage 1 (the paper: 64); stage s has C * d * 2^s inner channels
  widths        the block outputs per stage (256, 512, 1024 = 4x the ResNet bottleneck template 64/128/256)
  stem_channels the first conv (64)

"Cardinality vs width" is a comparison at equal complexity: fix `widths`, trade C against d
(ResNeXt Table 2: 1 x 64d, 2 x 40d, 4 x 24d, 8 x 14d, 32 x 4d have about the same parameters).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reslab.errors import ReslabError
from reslab.models.layers import ResponseTap, conv1x1, he_init
from reslab.models.registry import register
from reslab.models.resnet import check_widths


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def blocks_per_stage(depth) -> int:
    if not _is_int(depth) or depth < 11 or (depth - 2) % 9:
        raise ReslabError(
            f"model.depth={depth!r} is not 9n+2 with n >= 1 (three 1x1-3x3-1x1 convs per block); "
            "valid depths: 11, 20, 29, 38, ..."
        )
    return (depth - 2) // 9


class AggregatedBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, cardinality: int, inner: int):
        super().__init__()
        self.branch = nn.Sequential(
            conv1x1(cin, inner),
            nn.BatchNorm2d(inner),
            nn.ReLU(),
            nn.Conv2d(inner, inner, 3, stride, 1, groups=cardinality, bias=False),
            nn.BatchNorm2d(inner),
            ResponseTap(),
            nn.ReLU(),
            conv1x1(inner, cout),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class CifarResNeXt(nn.Module):
    def __init__(
        self,
        depth: int = 29,
        cardinality: int = 8,
        group_width: int = 64,
        widths=(256, 512, 1024),
        stem_channels: int = 64,
        num_classes: int = 10,
    ):
        super().__init__()
        n, widths = blocks_per_stage(depth), check_widths(widths)
        for key, value in (
            ("cardinality", cardinality),
            ("group_width", group_width),
            ("stem_channels", stem_channels),
        ):
            if not _is_int(value) or value < 1:
                raise ReslabError(f"model.{key}={value!r} must be an integer >= 1")
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_channels), ResponseTap(), nn.ReLU()
        )
        stages, cin = [], stem_channels
        for s, width in enumerate(widths):
            inner = cardinality * group_width * 2**s
            stages.append(
                nn.Sequential(
                    *[
                        AggregatedBottleneck(
                            cin if i == 0 else width, width, 2 if s > 0 and i == 0 else 1, cardinality, inner
                        )
                        for i in range(n)
                    ]
                )
            )
            cin = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


@register("resnext")
def resnext(**opts) -> CifarResNeXt:
    """Xie et al. 2017 CIFAR ResNeXt; ResNeXt-29 (8 x 64d) by default."""
    return CifarResNeXt(**opts)
