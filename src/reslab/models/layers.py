"""Small pieces shared by the CIFAR models: convs, norms, shortcuts, response taps."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from reslab.errors import bad_choice

NORMS = ("bn", "none")


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride, 0, bias=bias)


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise bad_choice("model.norm", kind, NORMS)


class ResponseTap(nn.Identity):
    """Marks a 'layer response' (ResNet Fig. 7: a 3x3 layer's output after BN, before ReLU and
    addition) so that probes find it by type instead of knowing each block's wiring."""


class ZeroPadShortcut(nn.Module):
    """Option A: identity; where the shape changes, subsample by the stride and append zero
    channels. No parameters, so a residual net has exactly the parameters of its plain twin."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.extra, self.stride = cout - cin, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x


class ShortcutDropout(nn.Module):
    """Dropout on the shortcut as Identity Mappings analyses it: it "statistically imposes a scale of
    lambda with an expectation of 0.5 on the shortcut" (section 3.1). That is the original dropout
    (Srivastava et al. 2014): keep each element with probability 1-p, no rescaling in training, and
    multiply by 1-p at test time, so the expected scale is 1-p in both modes. PyTorch's nn.Dropout is
    *inverted* dropout (x / (1-p) in training, identity at test): expectation 1, a different net.
    `rescale=True` gives the inverted form, kept for the comparison."""

    def __init__(self, p: float, rescale: bool = False):
        super().__init__()
        if not 0.0 < p < 1.0:
            raise ValueError(f"shortcut dropout p={p} must lie in (0, 1)")
        self.p, self.rescale = float(p), bool(rescale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = 1.0 - self.p
        if not self.training:
            return x if self.rescale else x * keep
        mask = torch.empty_like(x).bernoulli_(keep)
        return x * mask / keep if self.rescale else x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, rescale={self.rescale}"


class Projection(nn.Sequential):
    """Options B and C: 1x1 conv (with the block's stride) + BN."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__(conv1x1(cin, cout, stride), norm_layer(norm, cout))


def he_init(model: nn.Module, scale: float = 1.0) -> nn.Module:
    """He et al. 2015 (fan-in, ReLU gain) for every conv and linear layer; BN starts as identity.
    Biases start at zero except where a module set its own (the gates' b_g). `scale` != 1 multiplies
    every weight: without BN each layer then scales the backward signal by about `scale`, which is
    how the gradient-flow study builds nets that are known to vanish (< 1) or explode (> 1)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if scale != 1.0:
                with torch.no_grad():
                    m.weight.mul_(scale)
            if m.bias is not None and not getattr(m, "keep_bias_init", False):
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
