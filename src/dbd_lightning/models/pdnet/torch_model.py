"""PDNet: the "simplified DFFNet" of D-DFFNet Table IV / VI.

Plain ``nn.Module``. Each encoder level is brought to 32 channels by a 1x1
convolution with bias (no RFB); the decoder keeps only DFFNet's aggregation
("Agg") path: a plain top-down concatenation. No multiplicative guidance, no
side outputs, no spatial attention.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..components.conv import ConvBN
from ..components.dffm import up2
from ..components.encoder import TimmEncoder
from ..components.input_size import check_level_sizes


class PDNet(nn.Module):
    """timm encoder + 1x1 (bias) reductions + top-down concat decoder.

    With p1..p4 the reduced levels at strides 32, 16, 8, 4 and CU* 3x3 ConvBN:
    ``h1 = CU(up p1)``; ``h2 = ConvBN(cat[p2, h1])`` (2C); ``h3 = ConvBN(cat[p3, CU(up h2)])`` (3C);
    ``h4 = ConvBN(cat[p4, CU(up h3)])`` (4C); logits = 1x1(ConvBN(h4)) at 1/4, bilinear x4.

    ``forward`` returns ``logits``, ``side_logits`` (always empty) and ``features``.
    """

    def __init__(
        self,
        encoder: str = "resnest101e",
        pretrained: bool = False,
        weights_file: str | None = None,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        channels: int = 32,
    ) -> None:
        super().__init__()
        self.encoder = TimmEncoder(encoder, pretrained, weights_file, out_indices)
        if len(self.encoder.channels) != 4 or self.encoder.reductions != [4, 8, 16, 32]:
            raise ValueError(f"PDNet needs four encoder levels at strides [4, 8, 16, 32]; got "
                             f"{self.encoder.reductions} for {encoder!r} out_indices={list(out_indices)}")
        c = channels
        self.reduce = nn.ModuleList([nn.Conv2d(ch, c, 1, bias=True) for ch in self.encoder.channels])
        self.up1 = ConvBN(c, c)
        self.up2 = ConvBN(2 * c, 2 * c)
        self.up3 = ConvBN(3 * c, 3 * c)
        self.fuse2, self.fuse3, self.fuse4 = ConvBN(2 * c, 2 * c), ConvBN(3 * c, 3 * c), ConvBN(4 * c, 4 * c)
        self.head = nn.Sequential(ConvBN(4 * c, 4 * c), nn.Conv2d(4 * c, 1, 1))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features = self.encoder(image)
        check_level_sizes("PDNet", image, features, self.encoder.reductions[-1])
        p4, p3, p2, p1 = (r(f) for r, f in zip(self.reduce, features, strict=True))  # strides 4..32
        h2 = self.fuse2(torch.cat([p2, self.up1(up2(p1))], dim=1))
        h3 = self.fuse3(torch.cat([p3, self.up2(up2(h2))], dim=1))
        h4 = self.fuse4(torch.cat([p4, self.up3(up2(h3))], dim=1))
        out = self.head(h4)
        logits = F.interpolate(out, size=image.shape[-2:], mode="bilinear", align_corners=True)
        return {"logits": logits, "side_logits": [], "features": features}
