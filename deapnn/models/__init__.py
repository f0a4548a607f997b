"""Models by name: ``build_model(name, input_shape, num_classes)``.

Small models for the embedded datasets (``mlp``, ``cnn`` with 2-D and 1-D variants) and the
CIFAR-style 32×32 architectures of the GLS paper's experiments (Ding & Spector 2022, §4).
"""
from __future__ import annotations

from torch import nn

from .small import CNN1d, CNN2d, MLP
from .cifar import MobileNetV2, ResNet18, VGG19BN


def _cnn(input_shape, num_classes):
    if len(input_shape) == 2:
        return CNN1d(input_shape[0], num_classes)
    if len(input_shape) == 3:
        return CNN2d(input_shape[0], num_classes)
    raise ValueError(f"cnn needs an input of shape (C, L) or (C, H, W), got {tuple(input_shape)}")


def _image32(cls):
    def build(input_shape, num_classes):
        if len(input_shape) != 3:
            raise ValueError(f"{cls.__name__} needs (C, H, W) image inputs, got {tuple(input_shape)}")
        return cls(input_shape[0], num_classes)
    return build


MODELS = {
    "mlp": lambda shape, n: MLP(shape, n),
    "cnn": _cnn,
    "vgg19_bn": _image32(VGG19BN),
    "resnet18": _image32(ResNet18),
    "mobilenetv2": _image32(MobileNetV2),
}


def model_names() -> list[str]:
    return sorted(MODELS)


def build_model(name: str, input_shape, num_classes: int) -> nn.Module:
    """Build model ``name`` for examples of ``input_shape`` and ``num_classes`` outputs
    (``num_classes`` = output dimension, 1 for regression)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(model_names())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return MODELS[name](tuple(input_shape), int(num_classes))


__all__ = ["build_model", "model_names", "MODELS", "MLP", "CNN1d", "CNN2d", "VGG19BN", "ResNet18",
           "MobileNetV2"]
