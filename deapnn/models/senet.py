"""SENet18 for 32×32 images (Hu et al. 2018; the CIFAR variant of the GLS experiments, Ding &
Spector 2022, §4): a ResNet18 layout of pre-activation blocks, each with a squeeze-and-excitation
gate (reduction 16), after a 3×3 stride-1 stem."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cifar import StagedResNet


class PreActSEBlock(nn.Module):
    """BN-ReLU-3×3 conv → BN-ReLU-3×3 conv, the output scaled per channel by the SE gate
    (global average → 1×1 conv to ``cout/16`` → ReLU → 1×1 conv → sigmoid), plus the shortcut:
    identity, or a 1×1 conv of the pre-activated input when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.squeeze = nn.Conv2d(cout, cout // 16, 1)
        self.excite = nn.Conv2d(cout // 16, cout, 1)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        gate = F.adaptive_avg_pool2d(out, 1)
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(gate))))
        return out * gate + shortcut


class SENet18(StagedResNet):
    """SENet18 (CIFAR variant): 3×3 conv-BN-ReLU stem with 64 channels, four stages of two
    ``PreActSEBlock`` (64, 128, 256, 512 channels; the last three halve the resolution),
    global average pooling and a linear classifier."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__(in_channels, num_classes, PreActSEBlock,
                         ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)))
