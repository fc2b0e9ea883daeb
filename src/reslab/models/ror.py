"""RoR-3 for CIFAR (Zhang et al. 2017, "Residual Networks of Residual Networks: Multilevel Residual
Networks"): the CIFAR ResNet with two more levels of shortcuts on top of its residual blocks.

Levels (RoR-3): the *final* level is the blocks' own shortcuts; the *middle* level is one shortcut
across each stage (from the stage's input to its last block's addition); the *root* level is one
shortcut across all stages (from the stem's output to the last block's addition). The last block of
a stage therefore adds three (last stage) or two terms before its ReLU:
    y = ReLU(F(x) + h(x) + g(stage input) [+ r(stem output)])
The base net is He et al.'s CIFAR ResNet: 3x3 conv (16) -> 3 stages of n post-activation basic
blocks (16/32/64) -> global average pool -> linear; depth = 6n + 2 counts its main path only (the
level shortcuts are side branches, as a block's own shortcut is).

Shortcut types ("A" zero-pad identity, "B" projection where the shape changes, "C" projection
everywhere; a projection is a 1x1 conv + BN with the stride the path needs, 4 for the root):
  shortcut        the final level (the blocks')
  level_shortcut  the middle and root levels
The defaults, B and C, follow the public implementations read for this module: osmr/imgclsmob
(pytorchcv ror_cifar.py, whose ror3_56/110/164 counts tests/test_descendants.py pins; PyTorch),
titu1994/Residual-of-Residual-Networks (ror_wrn.py; Keras) and
nutszebra/residual_networks_of_residual_networks (Chainer) all put a 1x1 conv on every middle- and
root-level shortcut, and the first and last project the blocks' shortcuts where the shape changes.
(The paper's own text on shortcut types could not be read here; `shortcut` and `level_shortcut`
let a study set them either way.)
`shortcut=A, level_shortcut=A` gives RoR-3 with exactly the parameters of the CIFAR ResNet.

Differences from pytorchcv's code, none of which changes the parameter count: there, stages are
downsampled by a 2x2 max pool after each stage and every conv has stride 1 (except the root's 1x1,
stride 4); here the first block of stages 2 and 3 has stride 2, as in the CIFAR ResNet the paper
builds on, and so do the projections that cross it. Its names count every conv including the
shortcuts' (its "RoR-3-110" has 17 blocks per stage: our depth 104).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reslab.errors import bad_choice
from reslab.models.layers import ResponseTap, ZeroPadShortcut, conv1x1, conv3x3, he_init
from reslab.models.registry import register
from reslab.models.resnet import blocks_per_stage, check_widths

SHORTCUTS = ("A", "B", "C")


def level_path(kind: str, cin: int, cout: int, stride: int) -> nn.Module:
    """A shortcut of type A, B or C from cin channels to cout at `stride`."""
    if kind == "C" or (kind == "B" and (stride != 1 or cin != cout)):
        return nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
    if stride != 1 or cin != cout:
        return ZeroPadShortcut(cin, cout, stride)
    return nn.Identity()


class RoRBlock(nn.Module):
    """Post-activation basic block; `extra` (the level shortcuts ending here) joins the addition."""

    def __init__(self, cin: int, cout: int, stride: int, shortcut: str):
        super().__init__()
        self.branch = nn.Sequential(
            conv3x3(cin, cout, stride),
            nn.BatchNorm2d(cout),
            ResponseTap(),
            nn.ReLU(),
            conv3x3(cout, cout),
            nn.BatchNorm2d(cout),
            ResponseTap(),
        )
        self.shortcut = level_path(shortcut, cin, cout, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        y = self.branch(x) + self.shortcut(x)
        return self.relu(y if extra is None else y + extra)


class RoRStage(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, stride: int, shortcut: str, level_shortcut: str):
        super().__init__()
        self.blocks = nn.ModuleList(
            RoRBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, shortcut) for i in range(n)
        )
        self.shortcut = level_path(level_shortcut, cin, cout, stride)  # middle level

    def forward(self, x: torch.Tensor, root: torch.Tensor | None = None) -> torch.Tensor:
        middle = self.shortcut(x)
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1](x, middle if root is None else middle + root)


class RootLevel(nn.Module):
    """Holds the root-level shortcut (named `shortcut`, so the gradient probe files it with the shortcuts)."""

    def __init__(self, kind: str, cin: int, cout: int, stride: int):
        super().__init__()
        self.shortcut = level_path(kind, cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x)


class CifarRoR(nn.Module):
    def __init__(
        self,
        depth: int = 20,
        widths=(16, 32, 64),
        shortcut: str = "B",
        level_shortcut: str = "C",
        num_classes: int = 10,
    ):
        super().__init__()
        for what, value in (("model.shortcut", shortcut), ("model.level_shortcut", level_shortcut)):
            if value not in SHORTCUTS:
                raise bad_choice(what, value, SHORTCUTS)
        n, widths = blocks_per_stage(depth), check_widths(widths)
        self.stem = nn.Sequential(conv3x3(3, widths[0]), nn.BatchNorm2d(widths[0]), ResponseTap(), nn.ReLU())
        stages, cin = [], widths[0]
        for s, width in enumerate(widths):
            stages.append(RoRStage(cin, width, n, 2 if s > 0 else 1, shortcut, level_shortcut))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.root = RootLevel(level_shortcut, widths[0], cin, 2 ** (len(widths) - 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def signal_points(self):
        """The block outputs for the signal probe (a stage here is not a plain sequence of blocks)."""
        yield "stem", self.stem
        for s, stage in enumerate(self.stages):
            for b, block in enumerate(stage.blocks):
                yield f"stages.{s}.blocks.{b}", block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        root = self.root(x)
        for s, stage in enumerate(self.stages):
            x = stage(x, root if s == len(self.stages) - 1 else None)
        return self.fc(torch.flatten(self.pool(x), 1))


@register("ror")
def ror(**opts) -> CifarRoR:
    """Zhang et al. 2017 RoR-3 on the CIFAR ResNet."""
    return CifarRoR(**opts)
