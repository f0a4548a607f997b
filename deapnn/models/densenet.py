"""DenseNet121 for 32×32 images (Huang et al. 2017; the CIFAR variant of the GLS experiments,
Ding & Spector 2022, §4): growth rate 32, dense blocks of 6-12-24-16 bottleneck layers,
compression 0.5, a 3×3 stride-1 stem and no stem pooling."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DenseLayer(nn.Module):
    """BN-ReLU-1×1 conv (4·growth) → BN-ReLU-3×3 conv (growth); the new features are put in
    front of the input's."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """BN-ReLU-1×1 conv to ``cout`` channels, then 2×2 average pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet121(nn.Module):
    """DenseNet121 (CIFAR variant): 2·growth-channel stem, four dense blocks with a transition
    (halving channels, rounded down, and the resolution) between them, BN-ReLU, global average
    pooling and a linear classifier."""

    BLOCKS = (6, 12, 24, 16)

    def __init__(self, in_channels: int, num_classes: int, growth: int = 32,
                 reduction: float = 0.5):
        super().__init__()
        c = 2 * growth
        self.stem = nn.Conv2d(in_channels, c, 3, padding=1, bias=False)
        stages = []
        for i, n in enumerate(self.BLOCKS):
            layers = []
            for _ in range(n):
                layers.append(DenseLayer(c, growth))
                c += growth
            stages.append(nn.Sequential(*layers))
            if i + 1 < len(self.BLOCKS):
                cout = int(math.floor(c * reduction))
                stages.append(Transition(c, cout))
                c = cout
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(c)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        out = F.relu(self.bn(self.features(self.stem(x))))
        return self.head(F.adaptive_avg_pool2d(out, 1).flatten(1))
