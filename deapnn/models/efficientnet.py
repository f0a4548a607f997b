"""EfficientNetB0 for 32×32 images (Tan & Le 2019; the CIFAR variant of the GLS experiments,
Ding & Spector 2022, §4): a 3×3 stride-1 stem, the B0 stages of mobile inverted bottlenecks
with squeeze-and-excitation and swish, global average pooling, dropout 0.2 and a linear
classifier on the last stage's 320 channels (no 1×1 head convolution, as in that variant).

Stochastic depth (drop-connect) is off: the reference code's schedule for it never leaves rate
0 (docs/faithfulness.md)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

# (expansion, out channels, blocks, kernel, stride of the first block)
STAGES = ((1, 16, 1, 3, 1), (6, 24, 2, 3, 2), (6, 40, 2, 5, 2), (6, 80, 3, 3, 2),
          (6, 112, 3, 5, 1), (6, 192, 4, 5, 2), (6, 320, 1, 3, 1))


class SqueezeExcite(nn.Module):
    """Per-channel gate: global average → 1×1 conv (bias) → swish → 1×1 conv (bias) → sigmoid."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        gate = F.silu(self.reduce(F.adaptive_avg_pool2d(x, 1)))
        return x * self.expand(gate).sigmoid()


class MBConv(nn.Module):
    """1×1 expansion (absent when ``expansion`` is 1) → depthwise k×k (carrying the stride) →
    squeeze-and-excitation (reduced to a quarter of the *input* channels) → 1×1 projection;
    BN after each conv, swish after the first two; identity skip when the shape is kept."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = expansion * cin
        self.expand = None
        if expansion != 1:
            self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False),
                                        nn.BatchNorm2d(hidden), nn.SiLU())
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.SiLU())
        self.se = SqueezeExcite(hidden, int(cin * 0.25))
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.se(self.depthwise(out)))
        return out + x if self.skip else out


class EfficientNetB0(nn.Module):
    """EfficientNetB0 (CIFAR variant), see the module docstring."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(32), nn.SiLU())
        blocks, c = [], 32
        for expansion, cout, n, kernel, stride in STAGES:
            for i in range(n):
                blocks.append(MBConv(c, cout, kernel, stride if i == 0 else 1, expansion))
                c = cout
        self.layers = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        out = F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1)
        return self.head(self.dropout(out))
