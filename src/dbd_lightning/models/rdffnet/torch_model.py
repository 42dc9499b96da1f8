"""R-DFFNet: DFFNet with response-based depth distillation heads (D-DFFNet App. C, eq. 10).

Plain ``nn.Module``. As DD (Cun & Pun 2020): extra 1x1 depth classifiers on the
last layer (the input of the final 1x1 DBD classifier) and on each decoder
branch (the inputs of the four DBD side classifiers). A frozen depth teacher's
predictions are their pseudo-labels (``models.ddffnet.depth_losses.ResponseDepthDistillationLoss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..dffnet.torch_model import DFFNet


class RDFFNet(DFFNet):
    """DFFNet + depth heads. Same arguments as :class:`DFFNet`.

    ``forward`` returns DFFNet's dict plus ``depth`` (B,1,H,W) in [0, 1] at input
    size (sigmoid of the final depth head) and ``side_depth``: four maps at the
    side outputs' strides (16, 16, 8, 4), in [0, 1].
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        c = self.decoder.fuse2[0].in_channels // 2  # the RFB width
        self.depth_head = nn.Conv2d(4 * c, 1, 1)
        self.side_depth_heads = nn.ModuleList([nn.Conv2d(c, 1, 1) for _ in range(4)])

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features = self.encoder(image)
        r4, r3, r2, r1 = self.rfb_levels(features)
        out, sides, extra = self.decoder.forward_with_features(r1, r2, r3, r4)
        size = image.shape[-2:]
        logits = F.interpolate(out, size=size, mode="bilinear", align_corners=True)
        depth = F.interpolate(self.depth_head(extra["final"]), size=size, mode="bilinear", align_corners=True)
        side_depth = [torch.sigmoid(h(g)) for h, g in zip(self.side_depth_heads, extra["branches"], strict=True)]
        return {"logits": logits, "side_logits": sides, "features": features,
                "depth": torch.sigmoid(depth), "side_depth": side_depth}
