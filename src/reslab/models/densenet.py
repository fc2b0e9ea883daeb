"""DenseNet and DenseNet-BC for CIFAR (Huang et al. 2017, "Densely Connected Convolutional Networks").

Net: 3x3 conv (16 channels; 2k for DenseNet-BC) -> 3 dense blocks at 32/16/8 resolution -> BN-ReLU ->
global average pool -> linear. Every layer of a block appends k (the growth rate) channels to its
input: BN-ReLU-3x3 conv(k), or with `bottleneck` BN-ReLU-1x1 conv(4k)-BN-ReLU-3x3 conv(k).
Between blocks a transition, BN-ReLU-1x1 conv(floor(compression * channels))-2x2 avg pool, halves
the resolution. depth = 3n + 4 (plain) or 6n + 4 (bottleneck) with n layers per block: the stem,
the two transitions and the classifier are the 4.

  bottleneck=false, compression=1.0   DenseNet        (L=40, k=12: the paper's 1.0M)
  bottleneck=true,  compression=0.5   DenseNet-BC     (L=100, k=12: the paper's 0.8M)

Checked against the official code (liuzhuang13/DenseNet, models/densenet.lua and
DenseConnectLayer.lua): no conv biases, transitions also for compression 1, the last block ends
in BN-ReLU. One difference: that code always starts with 2k channels; we follow the paper's text
("16 (or twice the growth rate for DenseNet-BC)"); `stem_channels` reproduces the code.

Stages: the transition opens stages 2 and 3 (as the strided first block of a ResNet stage does),
so stage s runs at 32 / 2^s for every family. Initialisation is the project's he_init, like the
other families, so that the block is the only difference in a comparison.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from reslab.errors import ReslabError
from reslab.models.layers import ResponseTap, conv1x1, conv3x3, he_init
from reslab.models.registry import register

BOTTLENECK_WIDTH = 4  # a bottleneck's 1x1 conv produces 4k channels (paper, section 3)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def layers_per_block(depth: int, bottleneck: bool) -> int:
    step = 6 if bottleneck else 3
    if not _is_int(depth) or depth < step + 4 or (depth - 4) % step:
        kind = "DenseNet-BC (bottleneck)" if bottleneck else "DenseNet"
        valid = "10, 16, 22, 40, 100, 190, 250" if bottleneck else "7, 10, 13, 40, 100"
        raise ReslabError(
            f"model.depth={depth!r} does not fit {kind}: depth - 4 must be a positive multiple "
            f"of {step}; valid depths: {valid}, ..."
        )
    return (depth - 4) // step


class DenseLayer(nn.Module):
    """Pre-activation conv(s) producing k new channels, concatenated to the layer's input."""

    def __init__(self, cin: int, growth_rate: int, bottleneck: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm2d(cin), nn.ReLU()]
        if bottleneck:
            mid = BOTTLENECK_WIDTH * growth_rate
            layers += [conv1x1(cin, mid), nn.BatchNorm2d(mid), nn.ReLU()]
            cin = mid
        # The new channels go straight into the concatenation, so the tap sits right after the conv
        # (as for the second conv of a pre-activation residual block).
        layers += [conv3x3(cin, growth_rate), ResponseTap()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.layers(x)], 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(), conv1x1(cin, cout), nn.AvgPool2d(2))


class CifarDenseNet(nn.Module):
    def __init__(
        self,
        depth: int = 40,
        growth_rate: int = 12,
        bottleneck: bool = False,
        compression: float = 1.0,
        stem_channels: int | None = None,
        num_classes: int = 10,
    ):
        super().__init__()
        if not isinstance(bottleneck, bool):
            raise ReslabError(f"model.bottleneck={bottleneck!r} must be true or false")
        if not _is_int(growth_rate) or growth_rate < 1:
            raise ReslabError(f"model.growth_rate={growth_rate!r} must be an integer >= 1 (the paper uses 12, 24, 40)")
        if isinstance(compression, bool) or not isinstance(compression, (int, float)) or not 0 < compression <= 1:
            raise ReslabError(
                f"model.compression={compression!r} must be in (0, 1]; "
                "1.0 = no compression (DenseNet), 0.5 = DenseNet-BC"
            )
        n = layers_per_block(depth, bottleneck)
        if stem_channels is None:
            stem_channels = 2 * growth_rate if bottleneck and compression < 1 else 16
        if not _is_int(stem_channels) or stem_channels < 1:
            raise ReslabError(
                f"model.stem_channels={stem_channels!r} must be an integer >= 1, or null for the "
                "paper's 16 (2k for DenseNet-BC)"
            )

        self.stem = nn.Sequential(conv3x3(3, stem_channels))
        stages, channels = [], stem_channels
        for s in range(3):
            layers: list[nn.Module] = []
            if s > 0:
                reduced = math.floor(compression * channels)
                if reduced < 1:
                    raise ReslabError(
                        f"model.compression={compression!r} leaves no channels at transition {s} "
                        f"(floor({compression} * {channels}) = 0); use a larger compression"
                    )
                layers.append(Transition(channels, reduced))
                channels = reduced
            for _ in range(n):
                layers.append(DenseLayer(channels, growth_rate, bottleneck))
                channels += growth_rate
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.final = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final(self.stages(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


@register("densenet")
def densenet(**opts) -> CifarDenseNet:
    """Huang et al. 2017 CIFAR DenseNet; `bottleneck: true, compression: 0.5` gives DenseNet-BC."""
    return CifarDenseNet(**opts)
