"""The representation metric of a GLS comparison: effective rank of penultimate-layer features.

Ding & Spector (2022, their analysis of the learned representations) claim that GLS "learns more
diverse representations". The measure used here, for every arm's final model on the test split:

* features: the input of the network's last ``nn.Linear`` layer (the classifier), one row per
  test example — the penultimate-layer representation;
* effective rank (Roy & Vetterli 2007): the singular values σ₁ … σ_d of the feature matrix with
  its column means subtracted, normalised to a distribution pᵢ = σᵢ / Σⱼ σⱼ; the effective rank is
  exp(−Σᵢ pᵢ log pᵢ), between 1 (every example on one line) and d (all directions equally used).
"""
from __future__ import annotations

import torch
from torch import nn


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` of ``model`` in module order (its classifier); ``ValueError`` when it
    has none."""
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer: no penultimate features")
    return last


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """``(N, d)`` inputs of ``model``'s classifier layer for the examples ``x`` (eval mode,
    float64, on CPU)."""
    layer = classifier_layer(model)
    device = next(model.parameters()).device
    rows = []
    handle = layer.register_forward_pre_hook(
        lambda _module, inputs: rows.append(inputs[0].detach().flatten(1).double().cpu()))
    was_training = model.training
    model.eval()
    try:
        for xb in x.split(batch_size):
            model(xb.to(device))
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(rows) if rows else torch.empty(0, layer.in_features, dtype=torch.float64)


def effective_rank(features: torch.Tensor) -> float:
    """exp of the entropy of the normalised singular values of the column-centred ``features``
    (Roy & Vetterli 2007); NaN when there are none or they are all zero (or not finite)."""
    f = features.double()
    if f.numel() == 0 or not torch.isfinite(f).all():
        return float("nan")
    s = torch.linalg.svdvals(f - f.mean(0, keepdim=True))
    if s.sum() <= 0:
        return float("nan")
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def feature_effective_rank(model: nn.Module, x: torch.Tensor) -> float:
    """The effective rank of ``model``'s penultimate-layer features on ``x`` (the test split)."""
    return effective_rank(penultimate_features(model, x))


__all__ = ["classifier_layer", "penultimate_features", "effective_rank",
           "feature_effective_rank"]
