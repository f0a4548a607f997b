"""MobileNetV2 for 32×32 images (the GLS experiments, Ding & Spector 2022, §4), in two variants.

* :class:`MobileNetV2` (``mobilenetv2``, the default) — the reference code's network, layer for
  layer (its ``models/mobilenetv2.py``, a kuangliu/pytorch-cifar file): every block keeps its 1×1
  expansion conv, also when the expansion factor t is 1; ReLU after the stem, the expansion, the
  depthwise conv and the head conv; every stride-1 block adds a shortcut — the identity when the
  channels are kept, a 1×1 conv + BN when they change. 2,296,922 parameters for 3×32×32 inputs
  and 10 classes; the ``state_dict`` keys and shapes are the reference's, so its checkpoints load.
* :class:`MobileNetV2Paper` (``mobilenetv2_paper``) — Sandler et al. 2018 (§3–4, Table 2): no
  expansion conv when t = 1, ReLU6, a residual only when the stride is 1 and the channels are
  kept, no conv shortcuts. 2,236,682 parameters for 3×32×32 inputs and 10 classes.

Both use the CIFAR adaptation of the reference: a 3×3 stride-1 stem and stride 1 in the second
stage (the ImageNet network has stride 2 in both). Pooling is global average pooling, which for
32×32 inputs is the reference's fixed 4×4 average pooling and also takes other image sizes.
See docs/faithfulness.md (GLS, architectures).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

# (expansion t, out channels, blocks, stride of the first block): Sandler et al. Table 2 with the
# stem's and the second stage's stride set to 1 for 32×32 inputs, as in the reference code.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))


def _blocks(block, cin: int) -> tuple[nn.Sequential, int]:
    """The 17 inverted-residual blocks of :data:`STAGES` built by ``block(cin, cout, t, stride)``
    (the first block of a stage carries its stride); with the last block's channels."""
    layers = []
    for t, cout, n, stride in STAGES:
        for i in range(n):
            layers.append(block(cin, cout, t, stride if i == 0 else 1))
            cin = cout
    return nn.Sequential(*layers), cin


class ReferenceBlock(nn.Module):
    """The reference code's block: 1×1 expansion to ``t·cin`` channels (kept when t = 1) → 3×3
    depthwise (carrying the stride) → linear 1×1 projection, BN after each conv, ReLU after the
    first two. A stride-1 block adds its shortcut (identity, or 1×1 conv + BN when the channels
    change); a stride-2 block has none."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        self.stride = stride
        hidden = expansion * cin
        self.conv1 = nn.Conv2d(cin, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride == 1 and cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


class MobileNetV2(nn.Module):
    """MobileNetV2 as the reference code builds it (module docstring): stem 3×3 conv to 32
    channels + BN + ReLU, 17 blocks (``ReferenceBlock``), 1×1 conv to 1280 + BN + ReLU,
    global average pooling, linear classifier. Module names follow the reference's."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.layers, c = _blocks(ReferenceBlock, 32)
        self.conv2 = nn.Conv2d(c, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


class InvertedResidual(nn.Module):
    """Sandler et al.'s bottleneck (§3.3, Table 1): 1×1 expansion to ``t·cin`` channels + ReLU6
    (absent when t = 1) → 3×3 depthwise (carrying the stride) + ReLU6 → linear 1×1 projection,
    BN after each conv; identity residual only when the stride is 1 and the channels are kept."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        expand = [] if expansion == 1 else [nn.Conv2d(cin, hidden, 1, bias=False),
                                            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        self.block = nn.Sequential(
            *expand,
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV2Paper(nn.Module):
    """MobileNetV2 of Sandler et al. 2018 (Table 2) adapted to 32×32 inputs: stem 3×3 stride-1
    conv to 32 channels + BN + ReLU6, 17 blocks (``InvertedResidual``), 1×1 conv to 1280
    + BN + ReLU6, global average pooling, linear classifier."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        blocks, c = _blocks(InvertedResidual, 32)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
            nn.ReLU6(inplace=True), *blocks,
            nn.Conv2d(c, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(1280, num_classes)

    def forward(self, x):
        return self.head(self.features(x))
