"""Batch data augmentation on whatever device the batch lives.

``crop_flip`` is the standard CIFAR recipe (random 32x32 crop of the image zero-padded by 4
pixels, then a random horizontal flip; He et al. 2016, used by the GLS, NLFS and EvoMAL
CIFAR experiments); ``crop`` is the same without the flip (SVHN: digits are not mirror
symmetric); ``shift`` is the 1-D analogue of crop for sequences ``(N, C, L)`` such as MNIST-1D:
the signal zero-padded by ``padding`` samples on both ends, then a random window of length L.
The padding is zero in the *normalised* space the tensors live in.

A kind may carry its padding after a colon, ``"crop:1"`` (8×8 digits) or ``"shift:4"``
(MNIST-1D); :func:`parse_kind` splits it. Without one the padding is the ``padding`` argument
(4, the CIFAR recipe's).

Each batch costs two ``torch.gather`` calls: no per-image Python loop.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = (None, "crop", "crop_flip", "shift")


def parse_kind(kind: str | None, padding: int = 4) -> tuple[str | None, int]:
    """``(kind, padding)`` of an augmentation spec: ``None``/``"none"``, ``"crop"``,
    ``"crop_flip"``, ``"shift"``, each optionally followed by ``":PAD"`` (zero samples added on
    every side, an integer >= 0). ``ValueError`` names the valid spellings otherwise."""
    if kind is None or kind == "none":
        return None, padding
    name, _, pad = str(kind).partition(":")
    if name not in AUGMENTATIONS[1:] or (pad and not pad.isdigit()):
        raise ValueError(f"unknown augmentation {kind!r}; valid: none, crop, crop_flip, shift, "
                         "each optionally with :PADDING (e.g. crop:1, shift:4)")
    return name, int(pad) if pad else padding


def augment_batch(x: torch.Tensor, kind: str | None, generator: torch.Generator | None = None,
                  *, padding: int = 4) -> torch.Tensor:
    """Augment a batch of images ``x`` of shape ``(N, C, H, W)``; returns a new tensor.

    ``kind``: ``None``/``"none"`` (identity, returns ``x`` itself), ``"crop"`` (random crop
    with ``padding`` zero pixels on every side), ``"crop_flip"`` (crop, then a horizontal
    flip with probability 1/2) or ``"shift"`` (sequences ``(N, C, L)``: random shift by
    -padding … +padding samples, zeros shifted in); ``"KIND:PAD"`` overrides ``padding``.
    Deterministic for a given ``generator`` state; random draws are made on the generator's
    device (any device works for ``x``), or on ``x``'s device with the default generator when
    ``generator`` is ``None``.
    """
    kind, padding = parse_kind(kind, padding)
    if kind is None:
        return x
    if kind == "shift":
        return _shift(x, padding, generator)
    if x.dim() != 4:
        raise ValueError(f"augmentation {kind!r} needs image batches (N, C, H, W), "
                         f"got shape {tuple(x.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, c, h, w = x.shape
    draw_device = generator.device if generator is not None else x.device
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator,
                            device=draw_device).to(x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)           # (N, H)
    cols = torch.arange(w, device=x.device).expand(n, w)                    # (N, W)
    if kind == "crop_flip":
        flip = (torch.rand(n, generator=generator, device=draw_device) < 0.5).to(x.device)
        cols = torch.where(flip[:, None], (w - 1) - cols, cols)
    cols = cols + offsets[1, :, None]
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, padded.shape[3]))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def _shift(x: torch.Tensor, padding: int, generator: torch.Generator | None) -> torch.Tensor:
    """Random window of length L from each sequence zero-padded by ``padding`` on both ends."""
    if x.dim() != 3:
        raise ValueError(f"augmentation 'shift' needs sequence batches (N, C, L), got shape "
                         f"{tuple(x.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, c, length = x.shape
    draw_device = generator.device if generator is not None else x.device
    offsets = torch.randint(0, 2 * padding + 1, (n,), generator=generator,
                            device=draw_device).to(x.device)
    cols = offsets[:, None] + torch.arange(length, device=x.device)         # (N, L)
    padded = F.pad(x, (padding, padding)) if padding else x
    return padded.gather(2, cols[:, None, :].expand(n, c, length))
