"""Dual Path Networks (Chen et al. 2017, "Dual Path Networks"): a block with a residual path and a
densely connected path.

Block: 1x1 conv (w) -BN-ReLU- grouped 3x3 conv (w, `cardinality` groups) -BN-ReLU- 1x1 conv (o + k)
-BN. Of its o + k outputs, the first o are *added* to the first o channels of the input (the
residual path, ResNeXt-like, features re-used) and the last k are *concatenated* to the input's
other channels (the dense path, DenseNet-like, new features). Then ReLU. The first block of a stage
projects its input (1x1 conv + BN, with the stage's stride) to o + k channels, so a stage's dense
path starts with k channels and block i (from 0) leaves o + (i + 2) k channels.

Checked against kuangliu/pytorch-cifar (models/dpn.py), the public CIFAR DPN whose DPN-26 and DPN-92
tests/test_descendants.py pin: with its four stages (widths 96/192/384/768, outputs
256/512/1024/2048, dense depths 16/32/24/128, 32 groups, stem 64) this module builds the same net,
parameter for parameter. That code is post-activation (conv-BN-ReLU, as the CIFAR ResNet); the
authors' MXNet code (cypw/DPNs) is pre-activation (BN-ReLU-conv), on ImageNet only.

depth = 3 * blocks + 2 (three convs per block, the stem, the classifier): DPN-26 = 8 blocks,
DPN-92 = 30.

No CIFAR DPN is published (the paper reports ImageNet, Places and detection). The default net
(conf/model/dpn.yaml) is designed by us, on the CIFAR ResNet layout:
  - three stages at 32/16/8, no stage at 4x4: CIFAR ResNets stop at 8x8, and so do the other
    families of the block study (kuangliu's DPN keeps ImageNet's four stages on 32x32 inputs);
  - the first three stages of DPN-92 at a quarter of its channels: stem 16 (the CIFAR ResNet's),
    grouped widths 24/48/96, residual outputs 64/128/256 (the CIFAR bottleneck ResNet's), dense
    depths 4/8/6 (DPN-92's +16/+32/+24, quartered);
  - 8 groups, so the groups have DPN-92's width (3/6/12 channels);
  - 3 blocks per stage (depth 29), ResNeXt-29's layout.
The budget matcher scales every channel count by one factor, keeping the grouped widths multiples
of the cardinality.
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


def blocks_for(depth, stages: int, blocks_per_stage=None) -> list[int]:
    """Blocks in each stage: uniform from `depth`, or as given and then checked against `depth`."""
    if blocks_per_stage is None:
        step = 3 * stages
        if not _is_int(depth) or depth < step + 2 or (depth - 2) % step:
            valid = ", ".join(str(2 + step * m) for m in (1, 2, 3, 4))
            raise ReslabError(
                f"model.depth={depth!r} does not fit a DPN of {stages} stages of equal blocks: "
                f"depth = 2 + {step}m; valid depths: {valid}, ... (or give model.blocks_per_stage)"
            )
        return [(depth - 2) // step] * stages
    blocks = list(blocks_per_stage) if isinstance(blocks_per_stage, (list, tuple)) else blocks_per_stage
    if not isinstance(blocks, list) or len(blocks) != stages or not all(_is_int(b) and b >= 1 for b in blocks):
        raise ReslabError(
            f"model.blocks_per_stage={blocks_per_stage!r} must be a list of {stages} integers >= 1 "
            "(one per stage), or null to follow model.depth"
        )
    if depth != 2 + 3 * sum(blocks):
        raise ReslabError(
            f"model.depth={depth!r} does not match blocks_per_stage={blocks}: that net has depth "
            f"2 + 3 * {sum(blocks)} = {2 + 3 * sum(blocks)}"
        )
    return blocks


class DualPathBlock(nn.Module):
    def __init__(self, cin: int, width: int, out: int, dense: int, stride: int, cardinality: int, first: bool):
        super().__init__()
        self.out = out
        self.branch = nn.Sequential(
            conv1x1(cin, width),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, groups=cardinality, bias=False),
            nn.BatchNorm2d(width),
            ResponseTap(),
            nn.ReLU(),
            conv1x1(width, out + dense),
            nn.BatchNorm2d(out + dense),
        )
        self.shortcut = (
            nn.Sequential(conv1x1(cin, out + dense, stride), nn.BatchNorm2d(out + dense)) if first else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, y, o = self.shortcut(x), self.branch(x), self.out
        return self.relu(torch.cat([x[:, :o] + y[:, :o], x[:, o:], y[:, o:]], 1))


class DPN(nn.Module):
    def __init__(
        self,
        depth: int = 29,
        stem_channels: int = 16,
        widths=(24, 48, 96),
        out_channels=(64, 128, 256),
        dense_depths=(4, 8, 6),
        cardinality: int = 8,
        blocks_per_stage=None,
        num_classes: int = 10,
    ):
        super().__init__()
        widths = check_widths(widths)
        out_channels = check_widths(out_channels, "model.out_channels")
        dense_depths = check_widths(dense_depths, "model.dense_depths")
        if not len(widths) == len(out_channels) == len(dense_depths):
            raise ReslabError(
                f"model.widths={widths}, model.out_channels={out_channels} and model.dense_depths="
                f"{dense_depths} must have one entry per stage each"
            )
        for key, value in (("stem_channels", stem_channels), ("cardinality", cardinality)):
            if not _is_int(value) or value < 1:
                raise ReslabError(f"model.{key}={value!r} must be an integer >= 1")
        if any(w % cardinality for w in widths):
            raise ReslabError(
                f"model.widths={widths} must be multiples of model.cardinality={cardinality} "
                "(the grouped 3x3 conv splits them into equal groups)"
            )
        blocks = blocks_for(depth, len(widths), blocks_per_stage)
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_channels), ResponseTap(), nn.ReLU()
        )
        stages, cin = [], stem_channels
        for s, (w, o, k, m) in enumerate(zip(widths, out_channels, dense_depths, blocks)):
            stage = []
            for i in range(m):
                stage.append(DualPathBlock(cin, w, o, k, 2 if s > 0 and i == 0 else 1, cardinality, first=i == 0))
                cin = o + (i + 2) * k
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


@register("dpn")
def dpn(**opts) -> DPN:
    """Chen et al. 2017 Dual Path Network; the default is our CIFAR design (module docstring)."""
    return DPN(**opts)
