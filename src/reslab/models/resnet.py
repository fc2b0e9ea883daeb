"""CIFAR ResNets and their plain twins (He et al. 2016, section 4.2) with the shortcut and
activation-placement variants of Identity Mappings (He et al. 2016b, Tables 1 and 2).

Net: 3x3 conv(16) -> 3 stages of n basic blocks at 16/32/64 filters (the first block of stages
2 and 3 has stride 2) -> global average pool -> linear. depth = 6n + 2.

Every variant is an argument of one block class, so a study changes config, not code:
  shortcut   none | A | B | C       none = plain net; A = zero-pad identity; B = projection only
                                    where the shape changes; C = 1x1 conv + BN on every shortcut
                                    (also Identity Mappings' "1x1 conv shortcut")
  order      post | bn_after_add | relu_before_add | relu_preact | preact   (Identity Mappings Fig. 4)
  shortcut_scale, residual_scale    y = s*h(x) + r*F(x)                    (constant scaling)
  gate       none | exclusive | shortcut_only, with gate_bias b_g          (gating)
  shortcut_dropout                  dropout on h(x)                        (dropout shortcut)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reslab.errors import ReslabError, bad_choice
from reslab.models.layers import (NORMS, Projection, ResponseTap, ZeroPadShortcut, conv1x1, conv3x3,
                                  he_init, norm_layer)
from reslab.models.registry import register

SHORTCUTS = ("none", "A", "B", "C")
ORDERS = ("post", "bn_after_add", "relu_before_add", "relu_preact", "preact")
GATES = ("none", "exclusive", "shortcut_only")
BLOCKS = ("basic",)
PREACT_ORDERS = ("relu_preact", "preact")


def blocks_per_stage(depth: int) -> int:
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise ReslabError(
            f"model.depth={depth!r} is not 6n+2 with n >= 1; valid depths: 8, 14, 20, 26, 32, 44, 56, 110, 1202, ..."
        )
    return (depth - 2) // 6


class Gate(nn.Module):
    """g = sigmoid(1x1 conv(x) + b_g), one gate per output channel and position."""

    def __init__(self, cin: int, cout: int, stride: int, bias: float):
        super().__init__()
        self.conv = conv1x1(cin, cout, stride, bias=True)
        nn.init.constant_(self.conv.bias, bias)
        self.conv.keep_bias_init = True  # he_init must not zero b_g: the paper shows it decides success

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


class BasicBlock(nn.Module):
    """Two 3x3 convs; the shortcut, its modifications and the activation placement are arguments."""

    def __init__(self, cin: int, cout: int, stride: int = 1, *, shortcut: str = "A", order: str = "post",
                 norm: str = "bn", shortcut_scale: float = 1.0, residual_scale: float = 1.0,
                 gate: str = "none", gate_bias: float = 0.0, shortcut_dropout: float = 0.0,
                 first: bool = False):
        super().__init__()
        self.order, self.plain = order, shortcut == "none"
        self.shortcut_scale, self.residual_scale, self.gate_kind = shortcut_scale, residual_scale, gate
        # In a pre-activation net the first block's BN-ReLU also feeds the shortcut, because the
        # stem has no activation of its own (Identity Mappings, section 4.1).
        self.both_preact = first and order in PREACT_ORDERS

        act = lambda: nn.ReLU(inplace=False)  # noqa: E731 (in-place would break the taps' recorded tensors)
        if order == "preact":
            self.pre = nn.Sequential(norm_layer(norm, cin), act())
            branch = [conv3x3(cin, cout, stride), norm_layer(norm, cout), ResponseTap(), act(),
                      conv3x3(cout, cout), ResponseTap()]
        elif order == "relu_preact":
            self.pre = act()
            branch = [conv3x3(cin, cout, stride), norm_layer(norm, cout), ResponseTap(), act(),
                      conv3x3(cout, cout), norm_layer(norm, cout), ResponseTap()]
        else:
            self.pre = nn.Identity()
            second = [conv3x3(cout, cout), ResponseTap()] if order == "bn_after_add" else \
                [conv3x3(cout, cout), norm_layer(norm, cout), ResponseTap()]
            branch = [conv3x3(cin, cout, stride), norm_layer(norm, cout), ResponseTap(), act()] + second
            if order == "relu_before_add":
                branch.append(act())
        self.branch = nn.Sequential(*branch)
        # Without a shortcut every order reduces to the same plain stack, so `post` needs no special case.
        self.post = {"post": act(), "bn_after_add": nn.Sequential(norm_layer(norm, cout), act())}.get(order, nn.Identity())
        if self.plain:
            return

        if shortcut == "C" or (shortcut == "B" and (stride != 1 or cin != cout)):
            self.shortcut = Projection(cin, cout, stride, norm)
        else:
            self.shortcut = ZeroPadShortcut(cin, cout, stride)
        self.drop = nn.Dropout(shortcut_dropout) if shortcut_dropout > 0 else nn.Identity()
        self.gate = Gate(cin, cout, stride, gate_bias) if gate != "none" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.pre(x)
        f = self.branch(a)
        if self.plain:
            return self.post(f)
        h = self.drop(self.shortcut(a if self.both_preact else x))
        if self.gate is not None:
            g = self.gate(x)
            h = (1 - g) * h
            if self.gate_kind == "exclusive":
                f = g * f
        if self.shortcut_scale != 1 or self.residual_scale != 1:
            h, f = self.shortcut_scale * h, self.residual_scale * f
        out = h + f
        return self.post(out)


class CifarResNet(nn.Module):
    def __init__(self, depth: int = 20, shortcut: str = "A", block: str = "basic", order: str = "post",
                 norm: str = "bn", widths=(16, 32, 64), num_classes: int = 10, init_scale: float = 1.0,
                 **block_opts):
        super().__init__()
        for what, value, valid in (("model.shortcut", shortcut, SHORTCUTS), ("model.block", block, BLOCKS),
                                   ("model.order", order, ORDERS), ("model.norm", norm, NORMS),
                                   ("model.gate", block_opts.get("gate", "none"), GATES)):
            if value not in valid:
                raise bad_choice(what, value, valid)
        n = blocks_per_stage(depth)
        stem = [conv3x3(3, widths[0])]
        if order != "preact":
            stem += [norm_layer(norm, widths[0]), ResponseTap()]
            if order != "relu_preact":
                stem.append(nn.ReLU())
        self.stem = nn.Sequential(*stem)
        stages, cin = [], widths[0]
        for s, cout in enumerate(widths):
            blocks = []
            for i in range(n):
                stride = 2 if (s > 0 and i == 0) else 1
                blocks.append(BasicBlock(cin, cout, stride, shortcut=shortcut, order=order, norm=norm,
                                         first=(s == 0 and i == 0), **block_opts))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # Pre-activation nets end on an addition; they need one more activation before pooling.
        self.final = {"preact": nn.Sequential(norm_layer(norm, cin), nn.ReLU()),
                      "relu_preact": nn.ReLU()}.get(order, nn.Identity())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self, scale=init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final(self.stages(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


@register("resnet")
def resnet(**opts) -> CifarResNet:
    """He et al. 2016 CIFAR net; `shortcut: none` gives the plain net of the same depth."""
    return CifarResNet(**opts)
