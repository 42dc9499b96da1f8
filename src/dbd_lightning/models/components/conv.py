"""Convolution building blocks shared by the DBD families."""

from __future__ import annotations

from torch import nn


class ConvBN(nn.Sequential):
    """Convolution without bias followed by BatchNorm, **no activation**.

    This is the "BasicConv" of the D-DFFNet code (and of the RFB/CPD decoders it
    descends from): every RFB branch layer, DFFM "CU" unit and top-down fusion
    conv is one of these. Padding defaults to "same" for odd kernels.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        dilation: int = 1,
        padding: int | tuple[int, int] | None = None,
    ) -> None:
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if padding is None:
            padding = (dilation * (k[0] - 1) // 2, dilation * (k[1] - 1) // 2)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, k, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
        )
