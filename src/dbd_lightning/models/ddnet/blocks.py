"""DD's decoder blocks (Cun & Pun, ECCV 2020; supplement "More Details of Decoder").

* :class:`SelectiveBlock` - the selective (SK-style) part of SRFB: a receptive-field
  pyramid of dilated convolutions whose branches are mixed with channel-wise
  softmax attention (Li et al., SKNet, "fuse" + "select").
* :class:`SRFB` - Selective Reception Field Block: x2 upsampling, 3x3 conv to
  ``C/4``, selective block, 1x1 conv to the next stage's width.
* :class:`SideAttention` - SAB: side defocus + side depth map (2 channels) ->
  3x3 conv to 32 -> 3x3 conv to 1 -> sigmoid, multiplied into the features.

Written by hand: no library has these blocks (timm's ``SelectiveKernel`` mixes
parallel grouped convs of one stride, without the identity branch, the cascade,
or the dilation = kernel-size pyramid DD uses).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

FORMS = ("cascaded", "parallel")
POOLS = ("code", "joint")  # GAP of the SK attention: mean(-1).mean(-1) (authors) | mean over (H, W)
ORDERS = ("conv_relu_bn", "conv_bn_relu")


def _act_bn(channels: int, order: str) -> nn.Sequential:
    """The normalisation/activation after a conv: ReLU->BN (authors' code) or BN->ReLU (supplement)."""
    if order == "conv_relu_bn":
        return nn.Sequential(nn.ReLU(inplace=True), nn.BatchNorm2d(channels))
    if order == "conv_bn_relu":
        return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
    raise ValueError(f"order must be one of {ORDERS}, got {order!r}")


class SelectiveBlock(nn.Module):
    """Selective receptive-field pyramid with SK attention (``C -> C``).

    Branches: the input itself, then one ``k x k`` conv with dilation ``k`` per
    entry of ``kernel_sizes`` (each conv + BN + ReLU, "same" padding):

    * ``form="cascaded"`` (authors' code, default ``kernel_sizes=(3, 5, 7)``):
      the convs are applied **in series**, each to the previous branch's output
      (4 branches);
    * ``form="parallel"`` (supplement: 1x1 d1, 3x3 d3, 5x5 d5, 7x7 d7 and the
      original feature): every conv takes the input (5 branches with
      ``kernel_sizes=(1, 3, 5, 7)``).

    Attention (SK "fuse"/"select"): ``U = sum_i b_i``; ``s = GAP(U)``
    (``pool="code"``, default: the authors' ``mean(-1).mean(-1)``, width then height;
    ``pool="joint"``: one mean over H x W; the two round differently in float32);
    ``z = W s`` (Linear ``C -> d``, ``d = max(C // reduction, min_dim)``, no
    activation, as the code); per branch ``a_i = W_i z`` (Linear ``d -> C``);
    softmax over branches per channel; output ``sum_i a_i * b_i``.
    """

    def __init__(
        self,
        channels: int,
        kernel_sizes: Sequence[int] = (3, 5, 7),
        form: str = "cascaded",
        reduction: int = 16,
        min_dim: int = 32,
        pool: str = "code",
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"SelectiveBlock pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool
        if form not in FORMS:
            raise ValueError(f"SelectiveBlock form must be one of {FORMS}, got {form!r}")
        if not kernel_sizes or any(int(k) < 1 or int(k) % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd positive integers, got {list(kernel_sizes)}")
        self.form = form
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, int(k), padding=int(k) * (int(k) - 1) // 2, dilation=int(k)),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=False),
            )
            for k in kernel_sizes
        )
        self.num_branches = len(self.convs) + 1
        d = max(channels // reduction, min_dim)
        self.squeeze = nn.Linear(channels, d)
        self.excite = nn.ModuleList(nn.Linear(d, channels) for _ in range(self.num_branches))

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, y = [x], x
        for conv in self.convs:
            y = conv(y if self.form == "cascaded" else x)
            out.append(y)
        return out

    def attention(self, branches: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, M, C) softmax weights over the ``M`` branches, per channel."""
        u = torch.stack(list(branches), dim=1).sum(dim=1)
        s = u.mean(-1).mean(-1) if self.pool == "code" else u.mean(dim=(-2, -1))
        z = self.squeeze(s)
        return torch.softmax(torch.stack([fc(z) for fc in self.excite], dim=1), dim=1)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        b = self.branches(x)
        a = self.attention(b)
        out = (torch.stack(b, dim=1) * a[..., None, None]).sum(dim=1)
        return (out, a) if return_weights else out


class SRFB(nn.Module):
    """Selective Reception Field Block, one decoder stage ``in_channels -> out_channels``.

    ``up x2 (nearest) -> conv3x3 (C -> C/reduce, bias) -> ReLU, BN -> SelectiveBlock
    -> conv1x1 (C/reduce -> out, bias) -> ReLU, BN``. ``order="conv_bn_relu"`` is the
    supplement's CONV-BN-ReLU. ``size`` in :meth:`forward` upsamples to an exact
    size instead of x2 (inputs whose sides are not multiples of 32).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        reduce: int = 4,
        order: str = "conv_relu_bn",
        upsample: str = "nearest",
        **selective,
    ) -> None:
        super().__init__()
        mid = in_channels // reduce
        if mid < 1:
            raise ValueError(f"SRFB: in_channels={in_channels} // reduce={reduce} leaves no channel")
        self.upsample = upsample
        self.conv_in = nn.Conv2d(in_channels, mid, 3, padding=1)
        self.post_in = _act_bn(mid, order)
        self.sk = SelectiveBlock(mid, **selective)
        self.conv_out = nn.Conv2d(mid, out_channels, 1)
        self.post_out = _act_bn(out_channels, order)
        self.order = order

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        kw = {} if self.upsample == "nearest" else {"align_corners": False}
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode=self.upsample, **kw)
        elif tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode=self.upsample, **kw)
        x = self.post_in(self.conv_in(x))
        x = self.sk(x)
        return self.post_out(self.conv_out(x))


class SideAttention(nn.Module):
    """SAB: ``features * sigmoid(conv3x3_32->1(ReLU/BN(conv3x3_2->32(cat[side, depth]))))``.

    Both convs have a bias; the activation/BN order follows :class:`SRFB` ``order``.
    """

    def __init__(self, in_maps: int = 2, inner: int = 32, order: str = "conv_relu_bn") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_maps, inner, 3, padding=1)
        self.post = _act_bn(inner, order)
        self.conv2 = nn.Conv2d(inner, 1, 3, padding=1)

    def weights(self, maps: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv2(self.post(self.conv1(maps))))

    def forward(self, features: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return features * self.weights(maps)
