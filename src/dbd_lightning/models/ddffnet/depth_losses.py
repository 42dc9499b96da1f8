"""Depth losses: depth-teacher pretraining and response distillation (R-DFFNet, App. C eq. 10)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...losses.detection import DeepSupervisionLoss


def minmax_normalize(depth: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-image min-max normalisation to [0, 1] (for teachers with an arbitrary scale, e.g. MiDaS)."""
    flat = depth.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
    return (depth - lo) / (hi - lo).clamp_min(eps)


def depth_error(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1", eps: float = 1e-3) -> torch.Tensor:
    """``l1`` | ``l2`` (mean squared error) | ``silog`` (scale-invariant log, Eigen et al., lambda 0.85)."""
    if pred.shape[-2:] != target.shape[-2:]:
        pred = F.interpolate(pred, size=target.shape[-2:], mode="bilinear", align_corners=False)
    if kind == "l1":
        return (pred - target).abs().mean()
    if kind == "l2":
        return (pred - target).pow(2).mean()
    if kind == "silog":
        d = torch.log(pred.clamp_min(0) + eps) - torch.log(target.clamp_min(0) + eps)
        return (d.pow(2).mean() - 0.85 * d.mean().pow(2)).clamp_min(0).sqrt()
    raise ValueError(f"unknown depth loss {kind!r} (l1 | l2 | silog)")


class DepthLoss(nn.Module):
    """Supervised depth loss on ``outputs['depth']`` vs ``batch['depth']`` (both in [0, 1])."""

    def __init__(self, kind: Literal["l1", "l2", "silog"] = "l1") -> None:
        super().__init__()
        self.kind = kind

    def forward(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        if "depth" not in batch:
            raise KeyError("DepthLoss needs batch['depth'] (the synthetic data carries it; real benchmarks do not)")
        loss = depth_error(outputs["depth"], batch["depth"].float(), self.kind)
        return {"loss": loss, f"depth_{self.kind}": loss.detach()}


class ResponseDepthDistillationLoss(DeepSupervisionLoss):
    """R-DFFNet loss (D-DFFNet App. C, eq. 10):
    ``l = l_d^f + sum_k alpha_k l_d^k + lambda (l_2^f + sum_k beta_k l_2^k)``.

    The detection part is :class:`DeepSupervisionLoss` (same arguments). The
    depth pseudo-labels are a frozen depth teacher's predictions, put in
    ``batch["teacher"][teacher]["depth"]`` by the distillation callback; the
    network's ``depth`` and ``side_depth`` maps are upsampled (bilinear) to the
    pseudo-label size. Paper: l_2 loss, lambda = beta_k = 1.

    Out of training (validation/test) the teacher does not run and only the
    detection terms are computed; in training a missing teacher is an error.
    A teacher output ``{"depth": None}`` (``teacher/depth=none``) is the "w/o depth
    distillation" ablation: detection terms only. DD (``experiment=ddnet_paper``) uses this
    loss with BCE only, five side maps and ``normalize=minmax``.

    Args (beyond DeepSupervisionLoss):
        depth_weight: lambda.
        depth_side_weights: beta_k (a scalar is broadcast).
        depth_kind: ``l2`` (paper) | ``l1`` | ``silog``.
        teacher: the teacher's name in ``batch["teacher"]``.
        normalize: ``none`` or ``minmax`` (per image; for teachers of arbitrary scale, e.g. MiDaS).
    """

    def __init__(
        self,
        *args,
        depth_weight: float = 1.0,
        depth_side_weights: float | list[float] = 1.0,
        depth_kind: str = "l2",
        teacher: str = "depth",
        normalize: str = "none",
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if normalize not in ("none", "minmax"):
            raise ValueError(f"normalize must be 'none' or 'minmax', got {normalize!r}")
        self.depth_weight = float(depth_weight)
        self.depth_side_weights = depth_side_weights
        self.depth_kind = depth_kind
        self.teacher = teacher
        self.normalize = normalize

    def forward(self, outputs, batch) -> dict[str, torch.Tensor]:
        terms = super().forward(outputs, batch)
        teacher = (batch.get("teacher") or {}).get(self.teacher)
        if teacher is None:
            if self.training:
                raise RuntimeError(f"R-DFFNet loss: no batch['teacher'][{self.teacher!r}] in training; "
                                   "add the distillation callback (experiment=rdffnet)")
            return terms
        if "depth" not in teacher:
            raise KeyError(f"teacher {self.teacher!r} gives no depth map (MiDaS needs hub_dir for depth)")
        if teacher["depth"] is None:  # teacher/depth=none: no depth distillation
            return terms
        target = teacher["depth"].detach().float()
        if self.normalize == "minmax":
            target = minmax_normalize(target)
        final = depth_error(outputs["depth"], target, self.depth_kind)
        sides = outputs.get("side_depth") or []
        w = self.depth_side_weights
        weights = list(w) if isinstance(w, list | tuple) else [w] * len(sides)
        side = sum((wk * depth_error(s, target, self.depth_kind) for wk, s in zip(weights, sides, strict=True)),
                   final.new_zeros(()))
        terms["depth"] = final
        terms["side_depth"] = side
        terms["loss"] = terms["loss"] + self.depth_weight * (final + side)
        return terms
