"""Receptive Field Block (RFB) as used by DFFNet (D-DFFNet Sec. III-A, Fig. 3)."""

from __future__ import annotations

import torch
from torch import nn

from .conv import ConvBN


class RFBBranch(nn.Sequential):
    """1x1 reduction -> 1xk -> kx1 -> 3x3 with dilation k (k = 3, 5, 7)."""

    def __init__(self, in_channels: int, out_channels: int, k: int) -> None:
        super().__init__(
            ConvBN(in_channels, out_channels, 1),
            ConvBN(out_channels, out_channels, (1, k)),
            ConvBN(out_channels, out_channels, (k, 1)),
            ConvBN(out_channels, out_channels, 3, dilation=k),
        )


class RFB(nn.Module):
    """Multi-branch receptive-field block, ``C_in -> out_channels``.

    Branch 0 is a 1x1 ConvBN; branches 1..3 are :class:`RFBBranch` with
    k = 3, 5, 7. The four outputs are concatenated, fused by a 3x3 ConvBN and
    added to a 1x1 ConvBN shortcut of the input; the sum goes through a ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int = 32, kernel_sizes=(3, 5, 7)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBN(in_channels, out_channels, 1)]
            + [RFBBranch(in_channels, out_channels, k) for k in kernel_sizes]
        )
        self.fuse = ConvBN(out_channels * (1 + len(kernel_sizes)), out_channels, 3)
        self.shortcut = ConvBN(in_channels, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fuse(torch.cat([b(x) for b in self.branches], dim=1))
        return self.relu(y + self.shortcut(x))
