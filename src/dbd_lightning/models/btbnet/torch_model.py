"""BTBNet (Zhao et al., CVPR 2018): multi-stream bottom-top-bottom FCN + FNet + RRNet.

Section and equation numbers are the CVPR 2018 paper's; the authors released no code.

* :class:`VGGTrunk` - bottom-top stream: VGG16 convolutions with the three FC
  layers **and the five pooling layers removed** (Sec. 3.1), so every block keeps
  the input resolution.
* :class:`TopBottom` - the FFIC steps of Fig. 4: between consecutive blocks, the
  feedback (deeper) and forward (shallower) features each pass an extra 3x3 conv
  + ReLU (256, 128, 64, 1 channels) and are added element-wise.
* :class:`BTBStream` - one BTBNet (trunk + top-bottom stream) -> map ``M^n``.
* :class:`MapRefiner` - the FNet / RRNet body (Fig. 5, eq. 2-4): concat(maps,
  image) -> 3x3 convs 64, 128, 64, 1 with ReLU between, linear last layer.
* :class:`BTBNet` - N streams at scales ``s`` (Sec. 3.1 "Multi-stream"), maps
  resized back bilinearly, FNet fusion, RRNet applied ``rrnet_steps`` times with
  one shared parameter set (eq. 5).

Outputs follow the project contract: ``logits`` = final map (in-focus logits at
input size), ``side_logits`` = the N stream maps at input size (auxiliary losses,
eq. 7), ``features`` = ``[]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VGG16_WIDTHS", "VGG16_DEPTHS", "VGGTrunk", "TopBottom", "BTBStream", "MapRefiner", "BTBNet",
           "scaled_size"]

#: VGG16 block widths and convolutions per block (conv1_1 .. conv5_3).
VGG16_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)
VGG16_DEPTHS: tuple[int, ...] = (2, 2, 3, 3, 3)
_FUSIONS = ("none", "fnet", "mean")
_MAP_INPUTS = ("logits", "prob")
_INITS = ("kaiming", "torch")


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


def scaled_size(h: int | torch.Tensor, w: int | torch.Tensor, scale: float) -> tuple:
    """Stream input size ``(max(1, round(s H)), max(1, round(s W)))`` for the scale ``s``.

    Python ints (eager mode): Python's ``round`` of the float64 product (round half to even).
    0-dim tensors (``torch.jit.trace`` and the TorchScript-based ONNX exporter turn ``x.shape``
    into tensors, on which ``round()`` is undefined): the same float64 product and the same
    half-to-even rounding as tensor ops (``torch.round`` / ONNX ``Round``), so the traced graph
    recomputes exactly the eager sizes for every input size instead of freezing the example's.
    ``torch.export`` (symbolic ``SymInt`` sizes) takes the Python branch: ``round`` is symbolic there.
    """
    if isinstance(h, torch.Tensor) or isinstance(w, torch.Tensor):
        h, w = (v if isinstance(v, torch.Tensor) else torch.tensor(v) for v in (h, w))
        hw = torch.stack([h, w]).to(torch.float64) * float(scale)
        out = torch.round(hw).to(torch.int64).clamp(min=1)
        return out[0], out[1]
    return max(1, round(scale * h)), max(1, round(scale * w))


class VGGTrunk(nn.Module):
    """VGG16 conv layers without pooling / FC (Sec. 3.1); returns each block's last ReLU output.

    Layout follows torchvision / timm ``vgg16.features`` (a flat ``nn.Sequential`` of
    conv, ReLU, ...) minus the max-pool entries, so :meth:`load_vgg16_features` can
    copy ImageNet weights from a local ``features.<i>.*`` state dict.
    """

    def __init__(self, widths: Sequence[int] = VGG16_WIDTHS, depths: Sequence[int] = VGG16_DEPTHS,
                 in_channels: int = 3) -> None:
        super().__init__()
        if len(widths) != len(depths) or len(widths) < 2:
            raise ValueError(f"BTBNet trunk: widths {list(widths)} and depths {list(depths)} must have the same "
                             "length >= 2 (VGG16: 5 blocks)")
        if any(int(w) < 1 for w in widths) or any(int(d) < 1 for d in depths):
            raise ValueError(f"BTBNet trunk: widths {list(widths)} / depths {list(depths)} must be positive")
        self.widths, self.depths = tuple(int(w) for w in widths), tuple(int(d) for d in depths)
        self.blocks = nn.ModuleList()
        cin = in_channels
        for w, d in zip(self.widths, self.depths, strict=True):
            layers: list[nn.Module] = []
            for _ in range(d):
                layers += [_conv3x3(cin, w), nn.ReLU(inplace=True)]
                cin = w
            self.blocks.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats

    def convs(self) -> list[nn.Conv2d]:
        return [m for b in self.blocks for m in b if isinstance(m, nn.Conv2d)]

    def load_vgg16_features(self, path: str | Path) -> None:
        """Copy ImageNet VGG16 conv weights from a local torchvision/timm state dict.

        Keys ``features.<i>.weight/bias`` (``<i>`` = torchvision indices 0, 2, 5, ...:
        convs in order, pools skipped); ``state_dict`` / ``module.`` wrappers are
        accepted. Loaded with ``weights_only=True``. Needs the paper widths.
        """
        from ...utils.checkpoint import load_state_dict

        state = load_state_dict(path)
        convs = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")
                        and state[k].ndim == 4})
        mine = self.convs()
        if len(convs) != len(mine):
            raise ValueError(f"{path}: {len(convs)} conv layers under 'features.' but the BTBNet trunk has "
                             f"{len(mine)} (widths {list(self.widths)}, depths {list(self.depths)})")
        with torch.no_grad():
            for idx, conv in zip(convs, mine, strict=True):
                w, b = state[f"features.{idx}.weight"], state[f"features.{idx}.bias"]
                if w.shape != conv.weight.shape:
                    raise ValueError(f"{path}: features.{idx}.weight has shape {tuple(w.shape)}, the BTBNet "
                                     f"trunk expects {tuple(conv.weight.shape)} (use the paper widths)")
                conv.weight.copy_(w)
                conv.bias.copy_(b)


class TopBottom(nn.Module):
    """Top-bottom stream of FFIC steps (Sec. 3.1, Fig. 4).

    Step ``k`` (``k = 1..B-1``): ``x_k = act(conv_fb_k(x_{k-1})) + act(conv_fw_k(f_{B-k}))`` with
    ``x_0 = f_B`` (deepest block) and ``f_b`` the block outputs; 3x3 convs with
    ``channels[k-1]`` outputs (paper: 256, 128, 64, 1). The last step's output is the map.

    ``final_relu``: the paper attaches conv + ReLU on both streams at every step;
    ReLU on the two 1-channel maps would make the final logits >= 0 (every
    probability >= 0.5), so by default the last step is linear (switch to ``True``
    for the literal reading).
    """

    def __init__(self, block_channels: Sequence[int], channels: Sequence[int] = (256, 128, 64, 1),
                 final_relu: bool = False) -> None:
        super().__init__()
        block_channels = list(block_channels)
        if len(channels) != len(block_channels) - 1:
            raise ValueError(f"BTBNet top-bottom: {len(channels)} FFIC widths {list(channels)} given for "
                             f"{len(block_channels)} blocks (need blocks - 1 = {len(block_channels) - 1})")
        if int(channels[-1]) != 1:
            raise ValueError(f"BTBNet top-bottom: the last FFIC width must be 1 (the DBD map), got {list(channels)}")
        self.feedback, self.forward_convs = nn.ModuleList(), nn.ModuleList()
        cin = block_channels[-1]
        for k, c in enumerate(channels):
            self.feedback.append(_conv3x3(cin, int(c)))
            self.forward_convs.append(_conv3x3(block_channels[-2 - k], int(c)))
            cin = int(c)
        self.final_relu = bool(final_relu)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        last = len(self.feedback) - 1
        for k, (fb, fw) in enumerate(zip(self.feedback, self.forward_convs, strict=True)):
            a, b = fb(x), fw(feats[-2 - k])
            if k < last or self.final_relu:
                a, b = F.relu(a), F.relu(b)
            x = a + b
        return x


class BTBStream(nn.Module):
    """One BTBNet: VGG trunk + top-bottom stream (``top_bottom=True``).

    ``top_bottom=False`` is Table 2's VGGNet(FC) baseline: the pool-free VGG16 with a
    3x3 conv (1 channel) on its last block (Sec. 4.4).
    """

    def __init__(self, widths: Sequence[int] = VGG16_WIDTHS, depths: Sequence[int] = VGG16_DEPTHS,
                 ffic_channels: Sequence[int] = (256, 128, 64, 1), top_bottom: bool = True,
                 final_relu: bool = False) -> None:
        super().__init__()
        self.trunk = VGGTrunk(widths, depths)
        self.top_bottom = bool(top_bottom)
        if self.top_bottom:
            self.head: nn.Module = TopBottom(self.trunk.widths, ffic_channels, final_relu)
        else:
            self.head = _conv3x3(self.trunk.widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.trunk(x)
        return self.head(feats) if self.top_bottom else self.head(feats[-1])


class MapRefiner(nn.Module):
    """FNet / RRNet body (Sec. 3.2, eq. 2-4): ``cat(maps, image)`` -> 3x3 convs, ReLU between.

    Paper widths 64, 128, 64, 1; the last conv is linear (eq. 4).
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (64, 128, 64, 1)) -> None:
        super().__init__()
        if not channels or int(channels[-1]) != 1:
            raise ValueError(f"FNet/RRNet widths must end with 1 (the map), got {list(channels)}")
        layers: list[nn.Module] = []
        cin = in_channels
        for i, c in enumerate(channels):
            layers.append(_conv3x3(cin, int(c)))
            if i < len(channels) - 1:
                layers.append(nn.ReLU(inplace=True))
            cin = int(c)
        self.body = nn.Sequential(*layers)

    def forward(self, maps: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([maps, image], dim=1))


class BTBNet(nn.Module):
    """Multi-stream BTBNet with FNet fusion and RRNet recursion (Fig. 3).

    Args:
        scales: one stream per scale (paper default ``(1, 0.8, 0.6)``; Table 2: 1S
            ``(1,)``, 2S ``(1, 0.8)``, 4S ``(1, 0.8, 0.6, 0.4)``). Stream ``n`` sees the
            image resized (bilinear) to ``round(s_n H) x round(s_n W)``; its map is
            resized back (bilinear) to ``H x W``.
        widths, depths: VGG trunk per block (paper: VGG16 64-128-256-512-512, 2-2-3-3-3).
        ffic_channels: top-bottom extra conv widths (paper: 256, 128, 64, 1).
        fnet_channels / rrnet_channels: FNet / RRNet widths (paper: 64, 128, 64, 1).
        fusion: ``'fnet'`` (paper), ``'none'`` (single stream, Table 2 BTBNet(1S)) or
            ``'mean'`` (plain average of the stream logits; ablation helper).
        rrnet_steps: recursive RRNet applications with shared weights (paper: 3; 0 = no RRNet).
        map_input: what FNet / RRNet receive as maps: ``'logits'`` (``M`` of eq. 6, the
            maps as produced; default) or ``'prob'`` (sigmoid of them).
        top_bottom: ``False`` = VGGNet(FC) streams (Table 2 first row).
        final_relu: ReLU on the last FFIC step too (see :class:`TopBottom`).
        share_streams: one BTBNet for every scale instead of replicas (paper: replicas, ``False``).
        align_corners: bilinear resizing mode of the scale pyramid.
        weights_file: local torchvision/timm VGG16 state dict for the trunks (ImageNet init, Sec. 3.3).
        init: random init of every conv before any weights are loaded: ``'kaiming'`` (default;
            He normal, fan-in, zero bias: activations and the initial logits keep unit scale
            through the 13-conv plain stack without BatchNorm; fan-out would scale the 1-channel
            outputs up ~64x and saturate the sigmoid) or ``'torch'`` (PyTorch default).
            The paper loads ImageNet weights into the trunk and does not state the init of the
            new layers.
        init_ckpt: a Lightning checkpoint (or bare state dict) of a BTBNet of the same shape to start
            from, e.g. the synthetic pretraining phase (Sec. 4.1); loaded with ``weights_only=True``.
    """

    def __init__(
        self,
        scales: Sequence[float] = (1.0, 0.8, 0.6),
        widths: Sequence[int] = VGG16_WIDTHS,
        depths: Sequence[int] = VGG16_DEPTHS,
        ffic_channels: Sequence[int] = (256, 128, 64, 1),
        fnet_channels: Sequence[int] = (64, 128, 64, 1),
        rrnet_channels: Sequence[int] = (64, 128, 64, 1),
        fusion: str = "fnet",
        rrnet_steps: int = 3,
        map_input: str = "logits",
        top_bottom: bool = True,
        final_relu: bool = False,
        share_streams: bool = False,
        align_corners: bool = False,
        weights_file: str | None = None,
        init: str = "kaiming",
        init_ckpt: str | None = None,
    ) -> None:
        super().__init__()
        scales = tuple(float(s) for s in scales)
        if not scales or any(not 0.0 < s <= 4.0 for s in scales):
            raise ValueError(f"BTBNet scales must be a non-empty list of values in (0, 4], got {list(scales)}")
        if fusion not in _FUSIONS:
            raise ValueError(f"BTBNet fusion must be one of {_FUSIONS}, got {fusion!r}")
        if fusion == "none" and len(scales) != 1:
            raise ValueError(f"BTBNet fusion='none' needs exactly one scale, got {list(scales)} "
                             "(use fusion=fnet or mean for several streams)")
        if map_input not in _MAP_INPUTS:
            raise ValueError(f"BTBNet map_input must be one of {_MAP_INPUTS}, got {map_input!r}")
        if int(rrnet_steps) < 0:
            raise ValueError(f"BTBNet rrnet_steps must be >= 0, got {rrnet_steps}")
        self.scales, self.fusion, self.rrnet_steps = scales, fusion, int(rrnet_steps)
        self.map_input, self.align_corners = map_input, bool(align_corners)
        n_streams = 1 if share_streams else len(scales)
        self.streams = nn.ModuleList(
            BTBStream(widths, depths, ffic_channels, top_bottom, final_relu) for _ in range(n_streams)
        )
        self.share_streams = bool(share_streams)
        self.fnet = MapRefiner(len(scales) + 3, fnet_channels) if fusion == "fnet" else None
        self.rrnet = MapRefiner(1 + 3, rrnet_channels) if self.rrnet_steps > 0 else None
        if init not in _INITS:
            raise ValueError(f"BTBNet init must be one of {_INITS}, got {init!r}")
        if init == "kaiming":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
        if weights_file:
            for s in self.streams:
                s.trunk.load_vgg16_features(weights_file)
        if init_ckpt:
            from ...utils.checkpoint import load_weights

            load_weights(self, init_ckpt, prefix="net.")

    def _resize(self, x: torch.Tensor, size: tuple, identity: bool = False) -> torch.Tensor:
        # sizes are plain ints only in eager mode; traced (tensor) or symbolic (SymInt) ones must not be
        # compared: that would freeze the example's answer into the graph (or add a guard), so there
        # only ``identity`` (scale 1: round(1.0 * H) == H for every H) skips the resize; a bilinear
        # resize to the same size returns its input unchanged anyway
        concrete = all(isinstance(v, int) for v in (*size, *x.shape[-2:]))
        if identity or (concrete and tuple(x.shape[-2:]) == tuple(size)):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.align_corners)

    def _as_map(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.map_input == "prob" else logits

    def stream_maps(self, image: torch.Tensor) -> list[torch.Tensor]:
        """``M^n`` of every stream, resized back to the input size (Fig. 3)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"BTBNet expects a (B, 3, H, W) image batch, got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]  # ints in eager mode, 0-dim tensors while tracing (export)
        maps = []
        for n, s in enumerate(self.scales):
            size = scaled_size(h, w, s)
            stream = self.streams[0 if self.share_streams else n]
            one = s == 1.0
            maps.append(self._resize(stream(self._resize(image, size, one)), (h, w), one))
        return maps

    def forward(self, image: torch.Tensor) -> dict:
        maps = self.stream_maps(image)
        if self.fusion == "none":
            fused = maps[0]
        elif self.fusion == "mean":
            fused = torch.stack(maps).mean(0)
        else:
            fused = self.fnet(torch.cat([self._as_map(m) for m in maps], dim=1), image)
        out = fused
        for _ in range(self.rrnet_steps):  # eq. 5: R o R o R, one parameter set
            out = self.rrnet(self._as_map(out), image)
        sides = maps if (len(maps) > 1 or out is not maps[0]) else []
        return {"logits": out, "side_logits": sides, "features": []}
