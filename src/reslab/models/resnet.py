"""CIFAR ResNets and their plain twins (He et al. 2016, section 4.2) with the shortcut and
activation-placement variants of Identity Mappings (He et al. 2016b, Tables 1 and 2).

Net: 3x3 conv(16) -> 3 stages of n basic blocks at 16/32/64 filters (the first block of stages
2 and 3 has stride 2) -> global average pool -> linear. depth = 6n + 2.

  head       gap | flatten          gap = global average pool -> linear (the paper's, the default);
                                    flatten = the whole final feature map (64x8x8 for a 32x32 input)
                                    into the linear layer, which then fits one input size only
                                    (`input_size`, default 32): another is refused in one line
                                    (InputSizeError). Not in conf/model/*.yaml, so that the run keys of
                                    existing runs stay what they were: `+model.head=flatten`.
             | flatten-scaled       flatten, its features times 1/sqrt(h*w) (1/8 for 8x8) before the linear layer:
                                    the same function class as flatten (a linear map of the whole map), but SGD
                                    moves its logits about as much per step as the GAP head's. Plain flatten's
                                    4,096 inputs take 64x larger steps on the logits at one lr, and at the cpu
                                    profile's lr it underfits (the head study's pilot, experiments/head.md).

  block      basic | bottleneck     bottleneck = 1x1 (c) - 3x3 (c) - 1x1 (4c) with c = 16/32/64, so
                                    outputs are 64/128/256 and depth = 9n + 2 (ResNet-164 of
                                    Identity Mappings, section 4.2; order: preact, shortcut: B)

Every variant is an argument of one block class, so a study changes config, not code:
  shortcut   none | A | B | C       none = plain net; A = zero-pad identity; B = projection only
                                    where the shape changes; C = 1x1 conv + BN on every shortcut
                                    (also Identity Mappings' "1x1 conv shortcut")
  order      post | bn_after_add | relu_before_add | relu_preact | preact   (Identity Mappings Fig. 4)
  shortcut_scale, residual_scale    y = s*h(x) + r*F(x)                    (constant scaling)
  gate       none | exclusive | shortcut_only, with gate_bias b_g          (gating)
  shortcut_dropout                  dropout on h(x), expected scale 1-p    (dropout shortcut; see ShortcutDropout)
  zero_init_residual                the last BN of every residual branch starts at gamma = 0, so every block
                                    starts as its shortcut (Goyal et al. 2017; torchvision's zero_init_residual)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reslab.errors import InputSizeError, ReslabError, bad_choice
from reslab.models.layers import (
    NORMS,
    Projection,
    ResponseTap,
    ShortcutDropout,
    ZeroPadShortcut,
    conv1x1,
    conv3x3,
    he_init,
    norm_layer,
)
from reslab.models.registry import register

SHORTCUTS = ("none", "A", "B", "C")
ORDERS = ("post", "bn_after_add", "relu_before_add", "relu_preact", "preact")
GATES = ("none", "exclusive", "shortcut_only")
BLOCKS = ("basic", "bottleneck")
PREACT_ORDERS = ("relu_preact", "preact")
LAYERS_PER_BLOCK = {"basic": 2, "bottleneck": 3}
HEADS = ("gap", "flatten", "flatten-scaled")


def blocks_per_stage(depth: int, block: str = "basic") -> int:
    if block == "bottleneck":
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 11 or (depth - 2) % 9:
            raise ReslabError(
                f"model.depth={depth!r} is not 9n+2 with n >= 1 (block bottleneck); "
                "valid depths: 11, 20, 29, 38, 47, 56, 110, 164, 1001, ..."
            )
        return (depth - 2) // 9
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise ReslabError(
            f"model.depth={depth!r} is not 6n+2 with n >= 1; valid depths: 8, 14, 20, 26, 32, 44, 56, 110, 1202, ..."
        )
    return (depth - 2) // 6


def check_widths(widths, what: str = "model.widths") -> list[int]:
    widths = list(widths) if isinstance(widths, (list, tuple)) else widths
    if (
        not isinstance(widths, list)
        or not widths
        or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths)
    ):
        raise ReslabError(f"{what}={widths!r} is not a list of channel counts; each must be an integer >= 1")
    return widths


def residual_branch(convs: list[nn.Conv2d], order: str, norm: str, act) -> tuple[nn.Module, list[nn.Module]]:
    """(pre-activation, branch layers) for a chain of convs placed in one of the Identity Mappings orders.
    Every conv but the last is conv-BN-ReLU; the orders differ only at the two ends. A ResponseTap
    follows each 3x3 conv, after its BN where it has one (ResNet Fig. 7 measures 3x3 layers)."""
    pre = {"preact": nn.Sequential(norm_layer(norm, convs[0].in_channels), act()), "relu_preact": act()}.get(
        order, nn.Identity()
    )
    layers: list[nn.Module] = []
    for i, conv in enumerate(convs):
        last = i == len(convs) - 1
        layers.append(conv)
        # bn_after_add moves the last BN past the addition; preact's next BN is the next unit's.
        if not last or order not in ("bn_after_add", "preact"):
            layers.append(norm_layer(norm, conv.out_channels))
        if conv.kernel_size == (3, 3):
            layers.append(ResponseTap())
        if not last or order == "relu_before_add":
            layers.append(act())
    return pre, layers


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

    # A bottleneck's projection reads the shared pre-activation (see Bottleneck); a basic block's
    # keeps the original wiring, so the shortcut study's numbers stay what they were.
    preact_projection = False

    def convs(self, cin: int, cout: int, stride: int) -> list[nn.Conv2d]:
        return [conv3x3(cin, cout, stride), conv3x3(cout, cout)]

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int = 1,
        *,
        shortcut: str = "A",
        order: str = "post",
        norm: str = "bn",
        shortcut_scale: float = 1.0,
        residual_scale: float = 1.0,
        gate: str = "none",
        gate_bias: float = 0.0,
        shortcut_dropout: float = 0.0,
        shortcut_dropout_rescale: bool = False,
        first: bool = False,
    ):
        super().__init__()
        self.order, self.plain = order, shortcut == "none"
        self.shortcut_scale, self.residual_scale, self.gate_kind = shortcut_scale, residual_scale, gate
        # In a pre-activation net the first block's BN-ReLU also feeds the shortcut, because the
        # stem has no activation of its own (Identity Mappings, section 4.1).
        self.both_preact = first and order in PREACT_ORDERS

        act = lambda: nn.ReLU(inplace=False)  # noqa: E731 (in-place would break the taps' recorded tensors)
        self.pre, branch = residual_branch(self.convs(cin, cout, stride), order, norm, act)
        self.branch = nn.Sequential(*branch)
        # Without a shortcut every order reduces to the same plain stack, so `post` needs no special case.
        self.post = {"post": act(), "bn_after_add": nn.Sequential(norm_layer(norm, cout), act())}.get(
            order, nn.Identity()
        )
        if self.plain:
            return

        if shortcut == "C" or (shortcut == "B" and (stride != 1 or cin != cout)):
            if self.preact_projection and order == "preact":
                self.both_preact = True
                self.shortcut = Projection(cin, cout, stride, "none")
            else:
                self.shortcut = Projection(cin, cout, stride, norm)
        else:
            self.shortcut = ZeroPadShortcut(cin, cout, stride)
        self.drop = (
            ShortcutDropout(shortcut_dropout, shortcut_dropout_rescale) if shortcut_dropout > 0 else nn.Identity()
        )
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


class Bottleneck(BasicBlock):
    """1x1 (c) - 3x3 (c) - 1x1 (4c); `cout` is the block's output, 4c. Orders, shortcuts, gates and
    scaling are BasicBlock's. Under `preact` a projection shortcut is a bare 1x1 conv on the shared
    BN-ReLU output, as in the Identity Mappings code (KaimingHe/resnet-1k-layers, resnet-pre-act.lua):
    that is what gives ResNet-164 its 1,703,258 parameters."""

    expansion = 4
    preact_projection = True

    def convs(self, cin: int, cout: int, stride: int) -> list[nn.Conv2d]:
        mid = cout // self.expansion
        # The stride sits on the 3x3 (fb.resnet.torch, torchvision). The Identity Mappings code puts
        # it on the first 1x1, which has the same parameters but reads only 1 in 4 input positions.
        return [conv1x1(cin, mid), conv3x3(mid, mid, stride), conv1x1(mid, cout)]


def zero_last_bn(stages: nn.Module, shortcut: str, order: str, norm: str) -> None:
    """gamma = 0 for the BN that ends each residual branch: the block's output is then its shortcut's (through the
    block's final activation), and the net starts as a shallow one. Refused where no such BN exists: a plain net
    would output zeros, and bn_after_add, preact and norm none end their branches on a conv."""
    why = (
        "a plain net has no shortcut to start as (model.shortcut=none)"
        if shortcut == "none"
        else "model.norm=none has no BN"
        if norm == "none"
        else f"model.order={order} ends each branch on a conv, not a BN"
        if order in ("bn_after_add", "preact")
        else ""
    )
    if why:
        raise ReslabError(
            f"model.zero_init_residual=true cannot apply: {why}; valid: false, or a residual net with "
            "BN and order post, relu_before_add or relu_preact"
        )
    for block in stages.modules():
        if isinstance(block, BasicBlock):
            last = [m for m in block.branch if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))][-1]
            nn.init.zeros_(last.weight)


class CifarResNet(nn.Module):
    def __init__(
        self,
        depth: int = 20,
        shortcut: str = "A",
        block: str = "basic",
        order: str = "post",
        norm: str = "bn",
        widths=(16, 32, 64),
        num_classes: int = 10,
        init_scale: float = 1.0,
        zero_init_residual: bool = False,
        head: str = "gap",
        input_size: int = 32,
        **block_opts,
    ):
        super().__init__()
        for what, value, valid in (
            ("model.shortcut", shortcut, SHORTCUTS),
            ("model.block", block, BLOCKS),
            ("model.order", order, ORDERS),
            ("model.norm", norm, NORMS),
            ("model.gate", block_opts.get("gate", "none"), GATES),
            ("model.head", head, HEADS),
        ):
            if value not in valid:
                raise bad_choice(what, value, valid)
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ReslabError(f"model.input_size={input_size!r} is not valid; valid: an integer >= 1 (the image side)")
        n = blocks_per_stage(depth, block)
        widths = check_widths(widths)
        unit, expansion = (Bottleneck, Bottleneck.expansion) if block == "bottleneck" else (BasicBlock, 1)
        stem = [conv3x3(3, widths[0])]
        if order != "preact":
            stem += [norm_layer(norm, widths[0]), ResponseTap()]
            if order != "relu_preact":
                stem.append(nn.ReLU())
        self.stem = nn.Sequential(*stem)
        stages, cin = [], widths[0]
        for s, width in enumerate(widths):
            blocks, cout = [], width * expansion
            for i in range(n):
                stride = 2 if (s > 0 and i == 0) else 1
                blocks.append(
                    unit(
                        cin,
                        cout,
                        stride,
                        shortcut=shortcut,
                        order=order,
                        norm=norm,
                        first=(s == 0 and i == 0),
                        **block_opts,
                    )
                )
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # Pre-activation nets end on an addition; they need one more activation before pooling.
        self.final = {"preact": nn.Sequential(norm_layer(norm, cin), nn.ReLU()), "relu_preact": nn.ReLU()}.get(
            order, nn.Identity()
        )
        self.head_kind, self.input_size = head, input_size
        if head == "gap":
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, num_classes)
        else:
            # Each stride-2 stage maps a side n to ceil(n/2) (3x3 conv, padding 1; option A's x[::2] alike).
            side = input_size
            for _ in widths[1:]:
                side = -(-side // 2)
            self.feature_shape = (cin, side, side)
            self.pool = nn.Identity() if head == "flatten" else Scale(1.0 / side)  # 1/sqrt(side*side)
            self.fc = nn.Linear(cin * side * side, num_classes)
        he_init(self, scale=init_scale)
        if zero_init_residual:
            zero_last_bn(self.stages, shortcut, order, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_kind != "gap" and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise self.wrong_size(x)
        x = self.final(self.stages(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))

    def wrong_size(self, x: torch.Tensor) -> InputSizeError:
        c, h, w = self.feature_shape
        s = self.input_size
        return InputSizeError(
            f"model.head={self.head_kind} was built for {s}x{s} inputs (its linear layer reads a {c}x{h}x{w} "
            f"feature map); got {x.shape[-2]}x{x.shape[-1]}; valid: {s}x{s} inputs, or model.head=gap "
            "(global average pooling takes any size)"
        )


class Scale(nn.Module):
    """Multiplies its input by a constant (no parameter): the flatten-scaled head's 1/sqrt(h*w)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}"


@register("resnet")
def resnet(**opts) -> CifarResNet:
    """He et al. 2016 CIFAR net; `shortcut: none` gives the plain net of the same depth, and
    `block: bottleneck` the ResNet-164 family."""
    return CifarResNet(**opts)
