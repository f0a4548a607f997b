"""Models by name: ``build_model(name, input_shape, num_classes)``.

Small models for the embedded datasets (``mlp``, ``cnn`` with 2-D and 1-D variants) and the
CIFAR-style 32×32 architectures of the GLS paper's experiments (Ding & Spector 2022, §4):
``vgg19_bn``, ``resnet18``, ``resnet50``, ``densenet121``, ``mobilenetv2``, ``senet18``,
``efficientnetb0``, plus ``mobilenetv2_paper`` (MobileNetV2 as Sandler et al. define it;
``mobilenetv2`` is the reference code's variant, see ``deapnn.models.mobilenetv2``). A name
may also be the user's factory, ``package.module:function`` (:mod:`deapnn.models.user`).
"""
from __future__ import annotations

from torch import nn

from .small import CNN1d, CNN2d, MLP
from .cifar import ResNet18, ResNet50, StagedResNet, VGG19BN
from .densenet import DenseNet121
from .efficientnet import EfficientNetB0
from .mobilenetv2 import MobileNetV2, MobileNetV2Paper
from .senet import SENet18
from .user import ModelFactoryError, build_user_model, check_user_model, is_import_string


def _cnn(input_shape, num_classes):
    if len(input_shape) == 2:
        return CNN1d(input_shape[0], num_classes)
    return CNN2d(input_shape[0], num_classes)


def _image32(cls):
    def build(input_shape, num_classes):
        return cls(input_shape[0], num_classes)
    return build


def _check_cnn(shape):
    if len(shape) not in (2, 3):
        raise ValueError(f"cnn needs an input of shape (C, L) or (C, H, W), got {shape}")


def _check_image(name, min_side=1):
    def check(shape):
        if len(shape) != 3:
            raise ValueError(f"{name} needs (C, H, W) image inputs, got {shape}")
        if min(shape[1:]) < min_side:
            # VGG's five 2x2 poolings need at least 32x32; smaller inputs would only fail
            # inside the first forward pass, after training had started.
            raise ValueError(f"{name} needs images of at least {min_side}x{min_side}, got {shape}")
    return check


_INPUT_CHECKS = {
    "mlp": lambda shape: None,
    "cnn": _check_cnn,
    "vgg19_bn": _check_image("vgg19_bn", 32),
    "resnet18": _check_image("resnet18"),
    "resnet50": _check_image("resnet50"),
    # three 2×2 average poolings between the dense blocks need at least 8×8
    "densenet121": _check_image("densenet121", 8),
    "mobilenetv2": _check_image("mobilenetv2"),
    "mobilenetv2_paper": _check_image("mobilenetv2_paper"),
    "senet18": _check_image("senet18"),
    "efficientnetb0": _check_image("efficientnetb0"),
}


MODELS = {
    "mlp": lambda shape, n: MLP(shape, n),
    "cnn": _cnn,
    "vgg19_bn": _image32(VGG19BN),
    "resnet18": _image32(ResNet18),
    "resnet50": _image32(ResNet50),
    "densenet121": _image32(DenseNet121),
    "mobilenetv2": _image32(MobileNetV2),
    "mobilenetv2_paper": _image32(MobileNetV2Paper),
    "senet18": _image32(SENet18),
    "efficientnetb0": _image32(EfficientNetB0),
}


def model_names() -> list[str]:
    """The model names :func:`build_model` accepts, sorted."""
    return sorted(MODELS)


#: the words of a user's factory in a constraint's or error's message
USER_MODEL = "a factory package.module:function"


def check_model_input(name: str, input_shape, num_classes: int | None = None,
                      field: str = "model") -> None:
    """Raise ``ValueError`` unless model ``name`` exists and accepts examples of ``input_shape``
    (cheap for the named models: builds nothing, so the CLI can check before loading data). A
    user's factory ``package.module:function`` is imported and, with ``num_classes``, built and
    run once (:func:`~deapnn.models.user.check_user_model`; a :class:`ModelFactoryError` or
    :class:`~deapnn.imports.ImportStringError` naming ``field``)."""
    if is_import_string(name):
        if num_classes is None:
            from ..imports import resolve
            resolve(name, field)
        else:
            check_user_model(name, input_shape, num_classes, field)
        return
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(model_names())}, or "
                         f"{USER_MODEL}")
    shape = tuple(int(s) for s in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"{name} needs a non-empty input shape of positive sizes, got {shape}")
    _INPUT_CHECKS.get(name, lambda _shape: None)(shape)


def is_user_model(name) -> bool:
    """``package.module:function``: the user's factory (nothing is imported)."""
    return is_import_string(name)


def model_constraint():
    """The constraint of a configuration's ``model``: a name of ``MODELS`` or the user's
    factory (imported and checked by :func:`check_model_input` in the configuration's
    checks)."""
    from ..config import Check, Options
    return Options(model_names(), Check(is_import_string, USER_MODEL))


def build_model(name: str, input_shape, num_classes: int) -> nn.Module:
    """Build model ``name`` for examples of ``input_shape`` and ``num_classes`` outputs
    (``num_classes`` = output dimension, 1 for regression)."""
    user = is_import_string(name)
    if not user:
        check_model_input(name, input_shape)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if user:        # the user's factory, checked once by the configuration (check_model_input)
        return build_user_model(name, input_shape, num_classes)
    return MODELS[name](tuple(input_shape), int(num_classes))


__all__ = ["build_model", "check_model_input", "model_names", "MODELS", "USER_MODEL",
           "ModelFactoryError", "is_user_model", "model_constraint", "MLP", "CNN1d", "CNN2d",
           "VGG19BN", "ResNet18", "ResNet50", "DenseNet121", "MobileNetV2",
           "MobileNetV2Paper", "SENet18", "EfficientNetB0", "StagedResNet"]
