"""Depth-of-field edge loss of D-DFFNet (eq. 4)."""

from __future__ import annotations

from typing import Literal

import kornia
import torch
from torch import nn

LAPLACIAN_8 = torch.tensor([[1.0, 1.0, 1.0], [1.0, -8.0, 1.0], [1.0, 1.0, 1.0]])


def laplacian_response(x: torch.Tensor, padding: Literal["zeros", "replicate"] = "zeros") -> torch.Tensor:
    """3x3 Laplacian (all ones, centre -8) of a (B,1,H,W) map.

    ``padding="zeros"`` is the authors' operator: it also fires on the image
    border wherever the map is non-zero there. ``"replicate"`` is our fix.
    """
    border = {"zeros": "constant", "replicate": "replicate"}[padding]
    return kornia.filters.filter2d(x, LAPLACIAN_8.to(x)[None], border_type=border)


def dof_edges(mask: torch.Tensor, padding: Literal["zeros", "replicate"] = "zeros") -> torch.Tensor:
    """Binary DOF edge map of a binary focus mask: Laplacian response != 0 (~2 px thick)."""
    return (laplacian_response(mask.float(), padding) != 0).float()


class DOFEdgeDiceLoss(nn.Module):
    """``l_e = 1 - Dice(edge(pred), edge(gt))`` (D-DFFNet eq. 4).

    As in the authors' code: the predicted edge is ``e = Laplacian(sigmoid(logits))``
    squashed to ``p = e^2 / (e^2 + 1)``; the GT edge ``t`` is the binary
    Laplacian support of the mask; per sample
    ``l = 1 - (2 sum(p t) + 1) / (sum p^2 + sum t^2 + 1)``.

    Args:
        padding: ``"zeros"`` (authors' code) or ``"replicate"`` (no border edges).
        reduction: ``"mean"`` over the batch (ours) or ``"sum"`` (authors' code).
        smooth: the +1 smoothing term.
    """

    def __init__(
        self,
        padding: Literal["zeros", "replicate"] = "zeros",
        reduction: Literal["mean", "sum"] = "mean",
        smooth: float = 1.0,
    ) -> None:
        super().__init__()
        if padding not in ("zeros", "replicate"):
            raise ValueError(f"padding must be 'zeros' or 'replicate', got {padding!r}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.padding, self.reduction, self.smooth = padding, reduction, smooth

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = laplacian_response(torch.sigmoid(logits), self.padding)
        p = e.square() / (e.square() + 1)
        t = dof_edges(mask.float(), self.padding)
        dims = tuple(range(1, p.dim()))
        dice = (2 * (p * t).sum(dims) + self.smooth) / (p.square().sum(dims) + t.square().sum(dims) + self.smooth)
        per_sample = 1 - dice
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()
