"""VoVNet for CIFAR: one-shot aggregation (Lee et al. 2019, "An Energy and GPU-Computation Efficient
Backbone Network for Real-Time Object Detection") and its V2 (Lee & Park 2020, CenterMask).

OSA module: a chain of `layers_per_module` 3x3 conv-BN-ReLU layers of `widths[s]` channels; the
module's input and every layer's output are concatenated once, at the end, and a 1x1 conv-BN-ReLU
reduces them to `out_channels[s]`. (A dense block concatenates before every layer; OSA only once.)
version 2 adds, as in the reference code (youngwanLEE/vovnet-detectron2):
  - eSE on every module: global avg pool -> 1x1 conv C->C with bias -> hard sigmoid -> channel-wise
    multiply of the module output;
  - an identity shortcut around every module but the first of a stage (the first changes the
    channel count, and V2 adds no projection).

No CIFAR VoVNet is published. This one follows the CIFAR ResNet/DenseNet layout:
  - stem: one 3x3 conv-BN-ReLU at 32x32, no downsampling. The ImageNet stem (three convs, stride 4)
    exists to shrink 224x224 inputs; on 32x32 every CIFAR net keeps full resolution in stage 1.
    It has 32 channels, twice the first stage's width as DenseNet-BC's stem has 2k, because its
    output is one of the inputs the first module concatenates.
  - three stages at 32/16/8, widths 16/32/64 (the CIFAR ResNet's: a VoVNet layer sees as many
    channels as a ResNet layer at the same resolution, and per-layer FLOPs stay level across stages)
    and outputs 64/128/256 (4x the width, VoVNet-39's ratio in its deep stages, and the outputs of
    the CIFAR bottleneck ResNet).
  - downsampling: VoVNet's 3x3 max pool, stride 2, ceil_mode, at the start of stages 2 and 3. On
    32x32 it gives exactly 16x16 and 8x8, it has no parameters (the budget goes to the OSA modules),
    and it sits where the CIFAR ResNet has its strided convs, so no resolution is lost early.
  - layers_per_module 5 (VoVNet-39/57); modules are uniform across stages unless modules_per_stage
    says otherwise. The YAMLs use two per stage (depth 38; VoVNet-39's six modules, on three
    stages), because with one per stage V2 would have no identity shortcut at all.
  - head: global average pool -> linear, as for the other CIFAR nets.

depth = the number of weight layers on the longest input-to-output path: the stem conv, then per
module its 3x3 convs and its 1x1 concat conv, then the classifier:
    depth = 1 + (layers_per_module + 1) * total modules + 1
(e.g. 20 = one module of 5 layers per stage). As in ResNet's 6n+2, side branches do not count:
V2's shortcut is shorter, and eSE's 1x1 conv rescales channels without transforming the features
(an SE block does not change a ResNet's depth either; here it is a module's `gate`). With
modules_per_stage null the depth sets the modules per stage, so depth sweeps work as for the
other families.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from reslab.errors import ReslabError, bad_choice
from reslab.models.layers import ResponseTap, conv1x1, conv3x3, he_init
from reslab.models.registry import register
from reslab.models.resnet import check_widths

VERSIONS = (1, 2)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def depth_of(modules_per_stage: list[int], layers_per_module: int) -> int:
    return 2 + (layers_per_module + 1) * sum(modules_per_stage)


def modules_for(depth: int, stages: int, layers_per_module: int, modules_per_stage=None) -> list[int]:
    """Modules in each stage: from `depth` (uniform), or as given and then checked against `depth`."""
    per_module = layers_per_module + 1
    if modules_per_stage is None:
        step = stages * per_module
        if not _is_int(depth) or depth < step + 2 or (depth - 2) % step:
            valid = ", ".join(str(2 + step * m) for m in (1, 2, 3, 4))
            raise ReslabError(
                f"model.depth={depth!r} does not fit VoVNet with {stages} stages of equal modules and "
                f"layers_per_module={layers_per_module}: depth = 2 + {step}m; valid depths: {valid}, ..."
            )
        return [(depth - 2) // step] * stages
    mods = [modules_per_stage] * stages if _is_int(modules_per_stage) else modules_per_stage
    mods = list(mods) if isinstance(mods, (list, tuple)) else mods
    if not isinstance(mods, list) or len(mods) != stages or not all(_is_int(m) and m >= 1 for m in mods):
        raise ReslabError(
            f"model.modules_per_stage={modules_per_stage!r} must be an integer >= 1 or a list of "
            f"{stages} of them (one per stage), or null to follow model.depth"
        )
    if depth != depth_of(mods, layers_per_module):
        raise ReslabError(
            f"model.depth={depth!r} does not match modules_per_stage={mods} with layers_per_module="
            f"{layers_per_module}: that net has depth 2 + {per_module} * {sum(mods)} = "
            f"{depth_of(mods, layers_per_module)}"
        )
    return mods


def conv_bn_relu(conv: nn.Conv2d, tap: bool) -> nn.Sequential:
    bn = nn.BatchNorm2d(conv.out_channels)
    return nn.Sequential(conv, bn, ResponseTap(), nn.ReLU()) if tap else nn.Sequential(conv, bn, nn.ReLU())


class EffectiveSE(nn.Module):
    """eSE (CenterMask, section 3.2): one C->C 1x1 conv on the pooled features, hard sigmoid, rescale.
    SE's two FC layers with a C/r bottleneck lose channel information; eSE keeps all C."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = conv1x1(channels, channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.hardsigmoid(self.fc(F.adaptive_avg_pool2d(x, 1)))


class OSAModule(nn.Module):
    def __init__(self, cin: int, width: int, cout: int, layers: int, ese: bool = False, identity: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(
            conv_bn_relu(conv3x3(cin if i == 0 else width, width), tap=True) for i in range(layers)
        )
        self.concat = conv_bn_relu(conv1x1(cin + layers * width, cout), tap=False)
        # Named like the residual gates: the gradient probe then keeps eSE's conv off the main path.
        self.gate = EffectiveSE(cout) if ese else nn.Identity()
        self.identity = identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for layer in self.layers:
            outputs.append(layer(outputs[-1]))
        y = self.gate(self.concat(torch.cat(outputs, 1)))
        return y + x if self.identity else y


class CifarVoVNet(nn.Module):
    def __init__(
        self,
        depth: int = 20,
        version: int = 1,
        stem_channels: int = 32,
        widths=(16, 32, 64),
        out_channels=(64, 128, 256),
        layers_per_module: int = 5,
        modules_per_stage=None,
        num_classes: int = 10,
    ):
        super().__init__()
        if version not in VERSIONS or isinstance(version, bool):
            raise bad_choice("model.version", version, VERSIONS)
        widths = check_widths(widths)
        out_channels = check_widths(out_channels, "model.out_channels")
        if len(out_channels) != len(widths):
            raise ReslabError(
                f"model.out_channels={out_channels!r} must have one entry per stage, like model.widths={widths!r}"
            )
        if not _is_int(stem_channels) or stem_channels < 1:
            raise ReslabError(f"model.stem_channels={stem_channels!r} must be an integer >= 1")
        if not _is_int(layers_per_module) or layers_per_module < 1:
            raise ReslabError(
                f"model.layers_per_module={layers_per_module!r} must be an integer >= 1 (VoVNet uses 3 or 5)"
            )
        mods = modules_for(depth, len(widths), layers_per_module, modules_per_stage)

        self.stem = conv_bn_relu(conv3x3(3, stem_channels), tap=True)
        stages, cin = [], stem_channels
        for s, (width, cout, m) in enumerate(zip(widths, out_channels, mods)):
            blocks: list[nn.Module] = [nn.MaxPool2d(3, 2, ceil_mode=True)] if s > 0 else []
            for i in range(m):
                blocks.append(
                    OSAModule(cin, width, cout, layers_per_module, ese=version == 2, identity=version == 2 and i > 0)
                )
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


@register("vovnet")
def vovnet(**opts) -> CifarVoVNet:
    """CIFAR VoVNet; `version: 2` adds the identity shortcut and eSE of VoVNetV2."""
    return CifarVoVNet(**opts)
