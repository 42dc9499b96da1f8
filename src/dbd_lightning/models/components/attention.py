"""Spatial attention block (SAB) driven by a side-output logit map."""

from __future__ import annotations

import torch
from torch import nn


class SideSpatialAttention(nn.Module):
    """``g <- g * sigmoid(conv3x3(s))`` where ``s`` is the 1-channel side logit.

    D-DFFNet (Sec. III-A): each DFFM level predicts a side defocus map and uses
    it, through a 3x3 convolution (1 -> C, no bias) and a sigmoid, to re-weight
    its own features. DD uses the same block on its side defocus/depth maps.
    """

    def __init__(self, channels: int, in_maps: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_maps, channels, 3, padding=1, bias=False)

    def forward(self, features: torch.Tensor, side_logits: torch.Tensor) -> torch.Tensor:
        return features * torch.sigmoid(self.conv(side_logits))
