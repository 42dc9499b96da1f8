"""DepthNet: a small monocular depth network, the offline depth teacher of D-DFFNet.

Plain ``nn.Module``. Trained by this suite on the synthetic renderer's depth
ground truth (``model=depthnet data=synthetic``), it replaces MiDaS v2.1 when no
MiDaS weights are available. Its encoder is the same timm backbone as the
student's, so its four levels have the student's channels and strides (as
MiDaS v2.1's ResNeXt-101 levels match ResNeSt-101's).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..components.encoder import TimmEncoder


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DepthNet(nn.Module):
    """timm encoder + FPN-style top-down decoder -> normalised depth in [0, 1].

    Args:
        encoder / pretrained / weights_file / out_indices: see :class:`TimmEncoder`.
        width: decoder width.

    ``forward`` returns ``depth`` (B,1,H,W) in [0, 1] (sigmoid) at input size,
    ``depth_logits`` before the sigmoid, and ``features`` (the encoder levels).
    """

    def __init__(
        self,
        encoder: str = "resnet18",
        pretrained: bool = False,
        weights_file: str | None = None,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        width: int = 64,
    ) -> None:
        super().__init__()
        self.encoder = TimmEncoder(encoder, pretrained, weights_file, out_indices)
        self.lateral = nn.ModuleList([nn.Conv2d(c, width, 1) for c in self.encoder.channels])
        self.smooth = nn.ModuleList([_conv_bn_relu(width, width) for _ in self.encoder.channels])
        self.head = nn.Sequential(_conv_bn_relu(width, width), nn.Conv2d(width, 1, 1))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features = self.encoder(image)
        x = None
        for lateral, smooth, f in zip(reversed(self.lateral), reversed(self.smooth), reversed(features), strict=True):
            y = lateral(f)
            if x is not None:
                y = y + F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=False)
            x = smooth(y)
        logits = F.interpolate(self.head(x), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return {"depth": torch.sigmoid(logits), "depth_logits": logits, "features": features}
