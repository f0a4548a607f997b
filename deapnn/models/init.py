"""Weight initialisation schemes a caller can ask of any model.

``"xavier"``: every linear and convolution layer gets Xavier-uniform weights (Glorot & Bengio
2010) and zero biases; other layers (normalisation) take their own ``reset_parameters``. This is
the ``reset()`` of the EvoMAL reference's base networks (Raymond et al. 2023 code:
``experiments/resources/models/mlp.py`` L18-L22, ``lenet5.py`` L37-L41), which EvoMAL applies to
every network it builds. ``"pytorch"``: each layer's own ``reset_parameters`` (PyTorch's
default, Kaiming-uniform with fan-in biases).
"""
from __future__ import annotations

from torch import nn

#: initialisation schemes :func:`initialise` knows
INITS = ("xavier", "pytorch")

_XAVIER_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def initialise(model: nn.Module, scheme: str = "xavier") -> nn.Module:
    """Re-draw ``model``'s parameters in place with ``scheme`` (one of :data:`INITS`) from the
    global torch RNG (seed it, or fork it, around the call). Returns ``model``."""
    if scheme not in INITS:
        raise ValueError(f"unknown initialisation {scheme!r}; valid: {', '.join(INITS)}")
    for module in model.modules():
        if scheme == "xavier" and isinstance(module, _XAVIER_LAYERS):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model
