"""Deeply supervised detection loss shared by the DBD families."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn


class DeepSupervisionLoss(nn.Module):
    """``l = w_main * l_d(final) + sum_k alpha_k * l_d(side_k)`` (D-DFFNet eq. 6/8, beta = 0).

    with ``l_d = BCE + edge_weight * l_e``. Side logits are upsampled
    (bilinear) to the mask size before the loss, as in the paper.

    Args:
        edge_loss: the DOF-edge term module (``None`` = plain BCE).
        edge_weight: lambda of eq. 6 (paper: 0.5).
        main_weight: weight of the final map (paper: 1, authors' code: 1.1).
        side_weights: alpha_k per side output (paper: all 1); a scalar is broadcast.
    """

    def __init__(
        self,
        edge_loss: nn.Module | None = None,
        edge_weight: float = 0.5,
        main_weight: float = 1.0,
        side_weights: float | list[float] = 1.0,
    ) -> None:
        super().__init__()
        self.edge_loss = edge_loss
        self.edge_weight = float(edge_weight)
        self.main_weight = float(main_weight)
        self.side_weights = side_weights

    def _ld(self, logits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if logits.shape[-2:] != mask.shape[-2:]:
            logits = F.interpolate(logits, size=mask.shape[-2:], mode="bilinear", align_corners=True)
        bce = F.binary_cross_entropy_with_logits(logits, mask)
        edge = self.edge_loss(logits, mask) if self.edge_loss is not None and self.edge_weight else None
        return bce, edge

    def forward(self, outputs: Mapping, batch: Mapping) -> dict[str, torch.Tensor]:
        mask = batch["mask"].float()
        terms: dict[str, torch.Tensor] = {}
        bce, edge = self._ld(outputs["logits"], mask)
        terms["bce"] = bce
        total = self.main_weight * bce
        if edge is not None:
            terms["edge"] = edge
            total = total + self.main_weight * self.edge_weight * edge
        sides = outputs.get("side_logits") or []
        weights = self.side_weights if isinstance(self.side_weights, list | tuple) else [self.side_weights] * len(sides)
        if len(weights) != len(sides):
            raise ValueError(f"{len(weights)} side_weights given for {len(sides)} side outputs")
        side_bce = side_edge = 0.0
        for w, s in zip(weights, sides, strict=True):
            b, e = self._ld(s, mask)
            side_bce = side_bce + w * b
            total = total + w * b
            if e is not None:
                side_edge = side_edge + w * e
                total = total + w * self.edge_weight * e
        if sides:
            terms["side_bce"] = side_bce
            if self.edge_loss is not None and self.edge_weight:
                terms["side_edge"] = side_edge
        terms["loss"] = total
        return terms
