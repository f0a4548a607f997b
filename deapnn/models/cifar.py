"""CIFAR-style (32×32 input) architectures used in the GLS experiments (Ding & Spector 2022, §4):
VGG19-BN, ResNet18 and ResNet50 with a 3×3 stride-1 stem instead of the ImageNet stem
(DenseNet121, MobileNetV2, SENet18 and EfficientNetB0 are in their own modules)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"]


class VGG19BN(nn.Module):
    """VGG19 with batch normalisation; five 2×2 poolings bring 32×32 to 1×1 before the
    classifier."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        layers, c = [], in_channels
        for v in _VGG19:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def projection_shortcut(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Identity, or a 1×1 conv + BN when the block changes the shape (He et al. 2016, option B)."""
    if stride != 1 or cin != cout:
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential()


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = projection_shortcut(cin, cout, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class StagedResNet(nn.Module):
    """The CIFAR residual-network layout (He et al. 2016 with a 3×3 stride-1, 64-channel stem and
    no max-pool): ``stages`` of ``(planes, blocks, stride)`` built from ``block(cin, planes,
    stride)`` (output ``planes · block.expansion`` channels; the first block of a stage carries
    its stride), global average pooling and a linear classifier."""

    def __init__(self, in_channels: int, num_classes: int, block, stages):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        blocks, c = [], 64
        for planes, n, stride in stages:
            for i in range(n):
                blocks.append(block(c, planes, stride if i == 0 else 1))
                c = planes * getattr(block, "expansion", 1)
        self.layers = nn.Sequential(*blocks)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x):
        out = self.layers(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(out, 1).flatten(1))


class ResNet18(StagedResNet):
    """ResNet18 (He et al. 2016) with the CIFAR stem: 3×3 conv, no max-pool."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__(in_channels, num_classes, BasicBlock,
                         ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)))


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (carrying the stride) → 1×1 expand to 4× ``planes``, plus the shortcut."""

    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = self.expansion * planes
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = projection_shortcut(cin, cout, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet50(StagedResNet):
    """ResNet50 (He et al. 2016: bottleneck blocks 3-4-6-3) with the CIFAR stem: 3×3 conv, no
    max-pool; 2048 features into the classifier."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__(in_channels, num_classes, Bottleneck,
                         ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)))
