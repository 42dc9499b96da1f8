"""DDNet: the network of "Defocus Blur Detection via Depth Distillation" (Cun & Pun, ECCV 2020).

Plain ``nn.Module``; knows nothing of Lightning. Encoder (timm, five levels at
strides 2..32) + five SRFB decoder stages with skip additions; at every stage a
side defocus map and a side depth map (1x1 convs); SAB at stages 1-4 re-weights
the stage features from those two maps; a 1x1 conv fuses the five side maps
(bilinear to input size) into the final defocus logit, another one into the
final depth map. Depth is learnt by response distillation from a frozen depth
teacher (``models.ddffnet.depth_losses.ResponseDepthDistillationLoss``, ``experiment=ddnet_paper``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..components.encoder import TimmEncoder
from .blocks import SRFB, SideAttention

STRIDES = [2, 4, 8, 16, 32]
DEPTH_ACTIVATIONS = ("none", "sigmoid")


class DDNet(nn.Module):
    """DD (Cun & Pun 2020) with a timm encoder.

    Args:
        encoder: timm name. Paper: ``resnext101_32x4d`` (taps 64/256/512/1024/2048 at
            strides 2..32) or ``vgg16`` (with ``pool_taps=True``: the outputs of the
            five max-pools, 64/128/256/512/512). ``resnet18`` for CPU tests.
        pretrained / weights_file: see :class:`TimmEncoder`.
        out_indices: the five timm feature levels.
        pool_taps: apply a 2x2/2 max-pool to every tap (timm's VGG taps are the
            last ReLU *before* each pool; pooling them gives the "after each
            max-pool" features of the authors' VGG wrapper, strides 2..32).
        final_channels: width of the last stage (code: 32).
        reduce: SRFB channel reduction of the 3x3 conv (code and supplement: 4).
        selective_form: ``cascaded`` (code) | ``parallel`` (supplement).
        kernel_sizes: the selective block's convs (code: 3, 5, 7; supplement: 1, 3, 5, 7).
        sk_reduction / sk_min_dim: SK attention ``d = max(C // r, L)`` (SK defaults 16, 32).
        sk_pool: the SK attention's global average pool: ``"code"`` (authors, ``mean(-1).mean(-1)``;
            bit-identical outputs with their code) or ``"joint"`` (one mean over H x W).
        order: ``conv_relu_bn`` (code) | ``conv_bn_relu`` (supplement) in SRFB and SAB.
        upsample: SRFB upsampling mode (code: ``nearest``).
        attention: SAB on stages 1-4 (False = "w/o SAB" ablation).
        depth_activation: ``none`` (code: linear depth maps; the notebook clips
            to [0, 1]) | ``sigmoid`` (maps in [0, 1]).

    ``forward`` returns a dict:
        ``logits`` (B,1,H,W) final in-focus logits (fusion of the five side maps),
        ``side_logits`` five maps at strides 16, 8, 4, 2, 1 (stage 1 -> 5),
        ``depth`` (B,1,H,W) final depth map, ``side_depth`` five maps at the same strides,
        ``features`` the five encoder levels (strides 2..32).
    """

    def __init__(
        self,
        encoder: str = "resnext101_32x4d",
        pretrained: bool = False,
        weights_file: str | None = None,
        out_indices: Sequence[int] = (0, 1, 2, 3, 4),
        pool_taps: bool = False,
        final_channels: int = 32,
        reduce: int = 4,
        selective_form: str = "cascaded",
        kernel_sizes: Sequence[int] = (3, 5, 7),
        sk_reduction: int = 16,
        sk_min_dim: int = 32,
        sk_pool: str = "code",
        order: str = "conv_relu_bn",
        upsample: str = "nearest",
        attention: bool = True,
        depth_activation: str = "none",
    ) -> None:
        super().__init__()
        if depth_activation not in DEPTH_ACTIVATIONS:
            raise ValueError(f"depth_activation must be one of {DEPTH_ACTIVATIONS}, got {depth_activation!r}")
        self.encoder = TimmEncoder(encoder, pretrained, weights_file, out_indices)
        self.pool_taps = bool(pool_taps)
        strides = [r * 2 for r in self.encoder.reductions] if self.pool_taps else list(self.encoder.reductions)
        if strides != STRIDES:
            raise ValueError(
                f"DDNet needs five encoder levels at strides {STRIDES}; {encoder!r} with "
                f"out_indices={list(out_indices)} and pool_taps={self.pool_taps} gives strides {strides} "
                "(VGG: out_indices [0,1,2,3,4] with pool_taps=true)"
            )
        self.depth_activation = depth_activation
        ch = list(self.encoder.channels)  # x1..x5
        ins = [ch[4], ch[3], ch[2], ch[1], ch[0]]
        outs = [ch[3], ch[2], ch[1], ch[0], int(final_channels)]
        selective = dict(kernel_sizes=tuple(kernel_sizes), form=selective_form, reduction=sk_reduction,
                         min_dim=sk_min_dim, pool=sk_pool)
        self.stages = nn.ModuleList(
            SRFB(i, o, reduce=reduce, order=order, upsample=upsample, **selective) for i, o in zip(ins, outs, strict=True)
        )
        self.side_heads = nn.ModuleList(nn.Conv2d(o, 1, 1) for o in outs)
        self.depth_heads = nn.ModuleList(nn.Conv2d(o, 1, 1) for o in outs)
        self.attention = nn.ModuleList(SideAttention(2, 32, order) for _ in range(4)) if attention else None
        self.fuse = nn.Conv2d(5, 1, 1)
        self.fuse_depth = nn.Conv2d(5, 1, 1)
        self.stage_channels = outs

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        features = self.encoder(image)
        if self.pool_taps:
            features = [F.max_pool2d(f, 2, 2) for f in features]
        return features

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        if image.ndim != 4:
            raise ValueError(f"DDNet expects a (B, 3, H, W) batch, got shape {tuple(image.shape)}")
        features = self.encode(image)
        size = tuple(image.shape[-2:])
        skips = [features[3], features[2], features[1], features[0]]
        targets = [tuple(s.shape[-2:]) for s in skips] + [size]
        x = features[4]
        sides, depths = [], []
        for i, (stage, head, dhead) in enumerate(zip(self.stages, self.side_heads, self.depth_heads, strict=True)):
            x = stage(x, targets[i])
            s, d = head(x), dhead(x)
            sides.append(s)
            depths.append(d)
            if i < 4:
                if self.attention is not None:
                    x = self.attention[i](x, torch.cat([s, d], dim=1))
                x = x + skips[i]

        def fused(maps: list[torch.Tensor], conv: nn.Conv2d) -> torch.Tensor:
            up = [m if tuple(m.shape[-2:]) == size else
                  F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps]
            return conv(torch.cat(up, dim=1))

        logits = fused(sides, self.fuse)
        depth = fused(depths, self.fuse_depth)
        if self.depth_activation == "sigmoid":
            depth, depths = torch.sigmoid(depth), [torch.sigmoid(d) for d in depths]
        return {"logits": logits, "side_logits": sides, "depth": depth, "side_depth": depths, "features": features}
