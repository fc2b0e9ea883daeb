"""ImageNet ResNets (He et al. 2016, Table 1), built to be counted, not trained here: `reslab-summary
model=imagenet-resnet model.depth=50` prints their parameters and multiply-adds at 224x224, and
`reslab-report imagenet` sets them beside the paper's table (reslab.report.imagenet).

Net: 7x7 conv(64), stride 2 -> 3x3 max-pool, stride 2 -> 4 stages at 64/128/256/512 filters (56/28/14/7 for a
224x224 input; the first block of stages 2-4 has stride 2) -> global average pool -> 1000-way linear.

  depth       18, 34: basic blocks (two 3x3), stages [2,2,2,2] / [3,4,6,3]
              50, 101, 152: bottlenecks 1x1 (c) - 3x3 (c) - 1x1 (4c), stages [3,4,6,3] / [3,4,23,3] / [3,8,36,3]
  shortcut    B (the paper's ImageNet choice: projection where the shape changes) | A | C, as on CIFAR
  stride_at   where a bottleneck that downsamples puts its stride:
              paper   on the first 1x1, as the authors' released nets do (KaimingHe/deep-residual-networks,
                      prototxt/ResNet-101-deploy.prototxt: res3a_branch2a has stride 2)
              v1.5    on the 3x3, as torchvision and fb.resnet.torch do ("ResNet v1.5")
              The two have the same parameters. The paper's first 1x1 reads 1 in 4 input positions, so it
              costs a quarter of v1.5's (the 3x3 after it works at the output size either way): fewer
              multiply-adds for 50/101/152. Basic blocks have one place for the stride (the first 3x3).

The blocks are the CIFAR nets' own (reslab.models.resnet), post-activation, with BN after every conv.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from reslab.errors import bad_choice
from reslab.models.layers import conv1x1, conv3x3, he_init
from reslab.models.registry import register
from reslab.models.resnet import BasicBlock, Bottleneck

# depth -> (block, blocks per stage): He et al. 2016, Table 1
LAYOUTS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
WIDTHS = (64, 128, 256, 512)
STRIDE_AT = ("paper", "v1.5")
SHORTCUTS = ("A", "B", "C")


class PaperBottleneck(Bottleneck):
    """The bottleneck with its stride on the first 1x1 (the paper's released nets), not on the 3x3."""

    def convs(self, cin: int, cout: int, stride: int) -> list[nn.Conv2d]:
        mid = cout // self.expansion
        return [conv1x1(cin, mid, stride), conv3x3(mid, mid), conv1x1(mid, cout)]


class ImageNetResNet(nn.Module):
    def __init__(
        self,
        depth: int = 50,
        stride_at: str = "paper",
        shortcut: str = "B",
        num_classes: int = 1000,
        input_size: int = 224,
    ):
        super().__init__()
        if depth not in LAYOUTS:
            raise bad_choice("model.depth", depth, LAYOUTS)
        for what, value, valid in (("model.stride_at", stride_at, STRIDE_AT), ("model.shortcut", shortcut, SHORTCUTS)):
            if value not in valid:
                raise bad_choice(what, value, valid)
        block, counts = LAYOUTS[depth]
        unit, expansion = (
            (BasicBlock, 1)
            if block == "basic"
            else ({"paper": PaperBottleneck, "v1.5": Bottleneck}[stride_at], Bottleneck.expansion)
        )
        # input_size is what the net is counted at (reslab.summary); global average pooling lets it run at any size.
        self.input_size = input_size
        self.stem = nn.Sequential(
            nn.Conv2d(3, WIDTHS[0], 7, 2, 3, bias=False), nn.BatchNorm2d(WIDTHS[0]), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        stages, cin = [], WIDTHS[0]
        for s, (width, n) in enumerate(zip(WIDTHS, counts)):
            blocks, cout = [], width * expansion
            for i in range(n):
                blocks.append(unit(cin, cout, 2 if (s > 0 and i == 0) else 1, shortcut=shortcut, order="post"))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


@register("imagenet-resnet")
def imagenet_resnet(**opts) -> ImageNetResNet:
    """He et al. 2016 ImageNet ResNet-18/34/50/101/152 (Table 1)."""
    return ImageNetResNet(**opts)
