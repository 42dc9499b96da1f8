"""DFFNet: timm encoder + per-level RFB + DFFM decoder (D-DFFNet, Sec. III-A).

Plain ``nn.Module``; knows nothing of Lightning. Stage 1 of D-DFFNet trains this
network alone; stage 2 (distillation) trains a fresh one with frozen teachers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..components.dffm import DFFM
from ..components.encoder import TimmEncoder
from ..components.input_size import check_level_sizes
from ..components.rfb import RFB


class DFFNet(nn.Module):
    """Defocus blur detection network of Jin et al. (2023).

    Args:
        encoder: timm backbone name (paper: ``resnest101e``).
        pretrained / weights_file: see :class:`TimmEncoder`.
        out_indices: the four encoder levels at strides 4, 8, 16, 32.
        channels: RFB output width (paper: 32).
        attention: spatial attention from the side outputs (SAB).
        dense_guidance: the DFFM multiplicative guidance (False = "w/o DFFM").
        channels_last_decoder: run the RFBs and the DFFM in channels-last memory format
            (NHWC). Same network and weights (state-dict keys unchanged), outputs equal to
            float rounding; on CPU (oneDNN) the decoder's many 32-128-channel convs are
            ~30 % faster this way (``make bench``, ``dffnet_infer_*``). Not a paper item.

    ``forward`` returns a dict:
        ``logits`` (B,1,H,W) in-focus logits at input size (bilinear from 1/4),
        ``side_logits`` four maps at strides 16, 16, 8, 4 (s1..s4),
        ``features`` the four encoder maps (for feature distillation).
    """

    def __init__(
        self,
        encoder: str = "resnest101e",
        pretrained: bool = False,
        weights_file: str | None = None,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        channels: int = 32,
        attention: bool = True,
        dense_guidance: bool = True,
        channels_last_decoder: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = TimmEncoder(encoder, pretrained, weights_file, out_indices)
        if len(self.encoder.channels) != 4 or self.encoder.reductions != [4, 8, 16, 32]:
            raise ValueError(
                f"DFFNet needs four encoder levels at strides [4, 8, 16, 32]; {encoder!r} with "
                f"out_indices={list(out_indices)} gives strides {self.encoder.reductions}"
            )
        self.rfbs = nn.ModuleList([RFB(c, channels) for c in self.encoder.channels])
        self.decoder = DFFM(channels, attention=attention, dense_guidance=dense_guidance)
        self.channels_last_decoder = bool(channels_last_decoder)
        if self.channels_last_decoder:
            self.rfbs.to(memory_format=torch.channels_last)
            self.decoder.to(memory_format=torch.channels_last)

    def rfb_levels(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """RFB outputs of the four encoder levels, strides 4..32 (channels-last if so configured)."""
        if self.channels_last_decoder:
            features = [f.contiguous(memory_format=torch.channels_last) for f in features]
        return [rfb(f) for rfb, f in zip(self.rfbs, features, strict=True)]

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        features = self.encoder(image)
        check_level_sizes("DFFNet", image, features, self.encoder.reductions[-1])
        r4, r3, r2, r1 = self.rfb_levels(features)
        out, sides = self.decoder(r1, r2, r3, r4)
        logits = F.interpolate(out, size=image.shape[-2:], mode="bilinear", align_corners=True)
        if self.channels_last_decoder:
            logits = logits.contiguous()
            sides = [s.contiguous() for s in sides]
        return {"logits": logits, "side_logits": sides, "features": features}
