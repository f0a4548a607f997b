"""Small models for the embedded datasets: an MLP and a compact conv-net (2-D and 1-D)."""
from __future__ import annotations

import math

from torch import nn


class MLP(nn.Module):
    """Flatten → [Linear → ReLU] × len(hidden) → Linear."""

    def __init__(self, input_shape, num_classes: int, hidden=(256, 256)):
        super().__init__()
        layers, width = [nn.Flatten()], math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def _block(conv, bn, cin, cout):
    return [conv(cin, cout, 3, padding=1, bias=False), bn(cout), nn.ReLU(inplace=True)]


class CNN2d(nn.Module):
    """Conv-net for small images (8×8 digits up to 28×28 MNIST): 3 conv-BN-ReLU stages with one
    2×2 pooling after each of the first two stages, global average pooling, linear head."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32):
        super().__init__()
        c = (width, 2 * width, 4 * width)
        self.features = nn.Sequential(
            *_block(nn.Conv2d, nn.BatchNorm2d, in_channels, c[0]), nn.MaxPool2d(2, ceil_mode=True),
            *_block(nn.Conv2d, nn.BatchNorm2d, c[0], c[1]), nn.MaxPool2d(2, ceil_mode=True),
            *_block(nn.Conv2d, nn.BatchNorm2d, c[1], c[2]),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c[2], num_classes)

    def forward(self, x):
        return self.head(self.features(x))


class CNN1d(nn.Module):
    """The 1-D counterpart of :class:`CNN2d` for sequences such as MNIST-1D (C=1, L=40)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32):
        super().__init__()
        c = (width, 2 * width, 4 * width)
        self.features = nn.Sequential(
            *_block(nn.Conv1d, nn.BatchNorm1d, in_channels, c[0]), nn.MaxPool1d(2, ceil_mode=True),
            *_block(nn.Conv1d, nn.BatchNorm1d, c[0], c[1]), nn.MaxPool1d(2, ceil_mode=True),
            *_block(nn.Conv1d, nn.BatchNorm1d, c[1], c[2]),
            nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.head = nn.Linear(c[2], num_classes)

    def forward(self, x):
        return self.head(self.features(x))
