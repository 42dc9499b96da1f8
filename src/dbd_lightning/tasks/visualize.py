"""Image | GT | prediction grids for loggers."""

from __future__ import annotations

import torch
from torchvision.utils import make_grid

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD


def denormalize(image: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Undo ImageNet normalisation of a (B,3,H,W) batch, clipped to [0,1]."""
    m = torch.tensor(mean, dtype=image.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(1, 3, 1, 1)
    return (image * s + m).clamp(0, 1)


def prediction_grid(image: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """One row per sample: image | GT (white = in focus) | predicted in-focus probability. (3,H,W) in [0,1]."""
    rows = []
    for img, gt, p in zip(denormalize(image), mask, pred, strict=True):
        rows += [img, gt.expand(3, -1, -1), p.expand(3, -1, -1)]
    return make_grid(torch.stack(rows), nrow=3, padding=2, pad_value=1.0)
