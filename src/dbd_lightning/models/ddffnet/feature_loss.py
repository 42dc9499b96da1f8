"""Feature distillation loss of D-DFFNet stage 2 (Jin et al. 2023, eq. 2-3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def normalize_channels(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-pixel L2 normalisation over channels: ``u / max(||u||_2, eps)`` (eq. 2)."""
    return F.normalize(x, p=2.0, dim=1, eps=eps)


def pairwise_l2(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 2 for one level: ``|| u/||u|| - v/||v|| ||_2^2`` summed over channels,
    averaged over batch and pixels. ``teacher`` is detached."""
    diff = normalize_channels(student, eps) - normalize_channels(teacher.detach(), eps)
    return diff.pow(2).sum(dim=1).mean()


def match_size(teacher: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bring a teacher feature map to the student's spatial size (bilinear)."""
    if tuple(teacher.shape[-2:]) == tuple(size):
        return teacher
    return F.interpolate(teacher, size=tuple(size), mode="bilinear", align_corners=False)


class FeatureDistillationLoss(nn.Module):
    """``l_f`` of eq. 3: sum over teachers and encoder levels of eq. 2.

    ``forward(projected, teachers)`` takes, per teacher name, the list of
    projected student features ``A_theta(phi(x; theta_s))`` and the list of
    teacher encoder features ``phi(x; theta_t)`` (detached here; resized to the
    student's spatial size when they differ). Returns ``(total, per_teacher)``.

    Args:
        eps: normalisation epsilon (the authors' code: 1e-6).
        level_weights: optional weight per level (paper: all 1).
    """

    def __init__(self, eps: float = 1e-6, level_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.eps = float(eps)
        self.level_weights = list(level_weights) if level_weights is not None else None

    def forward(
        self, projected: dict[str, Sequence[torch.Tensor]], teachers: dict[str, Sequence[torch.Tensor]]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        per_teacher: dict[str, torch.Tensor] = {}
        for name, student_feats in projected.items():
            teacher_feats = teachers[name]
            if len(student_feats) != len(teacher_feats):
                raise ValueError(f"teacher {name!r}: {len(teacher_feats)} levels for {len(student_feats)} student levels")
            weights = self.level_weights or [1.0] * len(student_feats)
            loss = student_feats[0].new_zeros(())
            for w, s, t in zip(weights, student_feats, teacher_feats, strict=True):
                loss = loss + w * pairwise_l2(s, match_size(t.to(s.dtype), s.shape[-2:]), self.eps)
            per_teacher[name] = loss
        total = sum(per_teacher.values()) if per_teacher else torch.zeros(())
        return total, per_teacher
