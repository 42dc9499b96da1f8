"""Dense Feature Fusion Module (DFFM) of DFFNet (D-DFFNet Sec. III-A, Fig. 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import SideSpatialAttention
from .conv import ConvBN


def up2(x: torch.Tensor, times: int = 1) -> torch.Tensor:
    """Bilinear x2 upsampling (align_corners=True), applied ``times`` times."""
    for _ in range(times):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    return x


class DFFM(nn.Module):
    """Dense multiplicative guidance + side outputs + spatial attention + top-down fusion.

    Inputs ``f1..f4`` are the RFB outputs (``channels`` each) at strides
    32, 16, 8, 4 (deepest first). With ``up`` = bilinear x2 and CU* = 3x3 ConvBN:

    - g2 = CU1(up f1) * f2                                  (1/16)
    - g3 = CU2(up^2 f1) * CU3(up f2) * f3                   (1/8)
    - g4 = CU2(up^3 f1) * CU3(up^2 f2) * CU6(up f3) * f4    (1/4, CU2/CU3 shared with g3)
    - g1 = CU4(up f1)                                       (1/16)
    - side logits s_k = 1x1 conv(g_k), and g_k <- g_k * sigmoid(conv3x3(s_k)) (SAB)
    - h2 = ConvBN3(cat[g2, g1]) (2C), h3 = ConvBN3(cat[g3, CU5(up h2)]) (3C),
      h4 = ConvBN3(cat[g4, CU7(up h3)]) (4C), out = 1x1(ConvBN3(h4)) at 1/4.

    ``dense_guidance=False`` is the "w/o DFFM" ablation of Table VI (each g_k
    is its own RFB feature, g1 = CU4(up f1)); ``attention=False`` drops the SAB.
    """

    def __init__(self, channels: int = 32, attention: bool = True, dense_guidance: bool = True) -> None:
        super().__init__()
        c = channels
        self.dense_guidance = dense_guidance
        self.cu1, self.cu2, self.cu3 = ConvBN(c, c), ConvBN(c, c), ConvBN(c, c)
        self.cu4, self.cu6 = ConvBN(c, c), ConvBN(c, c)
        self.cu5, self.cu7 = ConvBN(2 * c, 2 * c), ConvBN(3 * c, 3 * c)
        self.side_heads = nn.ModuleList([nn.Conv2d(c, 1, 1) for _ in range(4)])
        self.attention = nn.ModuleList([SideSpatialAttention(c) for _ in range(4)]) if attention else None
        self.fuse2 = ConvBN(2 * c, 2 * c)
        self.fuse3 = ConvBN(3 * c, 3 * c)
        self.fuse4 = ConvBN(4 * c, 4 * c)
        self.head = nn.Sequential(ConvBN(4 * c, 4 * c), nn.Conv2d(4 * c, 1, 1))

    def forward(self, f1, f2, f3, f4) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out, sides, _ = self.forward_with_features(f1, f2, f3, f4)
        return out, sides

    def forward_with_features(self, f1, f2, f3, f4) -> tuple[torch.Tensor, list[torch.Tensor], dict]:
        """As :meth:`forward`, plus the branch features ``g1..g4`` (the side heads' inputs,
        before attention) and ``final`` (the input of the last 1x1 classifier, 4C channels)."""
        f1_up = up2(f1)  # each upsampled map is computed once and shared
        if self.dense_guidance:
            f1_up2, f2_up = up2(f1_up), up2(f2)
            g2 = self.cu1(f1_up) * f2
            g3 = self.cu2(f1_up2) * self.cu3(f2_up) * f3
            g4 = self.cu2(up2(f1_up2)) * self.cu3(up2(f2_up)) * self.cu6(up2(f3)) * f4
        else:
            g2, g3, g4 = f2, f3, f4
        g1 = self.cu4(f1_up)
        gs = [g1, g2, g3, g4]
        branches = list(gs)
        sides = [head(g) for head, g in zip(self.side_heads, gs, strict=True)]
        if self.attention is not None:
            gs = [sab(g, s) for sab, g, s in zip(self.attention, gs, sides, strict=True)]
        g1, g2, g3, g4 = gs
        h2 = self.fuse2(torch.cat([g2, g1], dim=1))
        h3 = self.fuse3(torch.cat([g3, self.cu5(up2(h2))], dim=1))
        h4 = self.fuse4(torch.cat([g4, self.cu7(up2(h3))], dim=1))
        final = self.head[0](h4)
        return self.head[1](final), sides, {"branches": branches, "final": final}
