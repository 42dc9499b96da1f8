"""Karaali, Harte & Jung: B-NET (blur level) and E-NET (pattern vs depth edge), plain torch.

Architecture (paper Fig. 2-3, Sec. III; layer shapes of the published weights):
every conv is 3x3 (or 1x1) VALID, 64 channels, no bias, followed by ReLU;
max-pooling is 3x3 with stride 3. Three streams see the centre 41x41, 27x27 and
15x15 crops of one RGB edge patch (values in [0, 1]) and each ends at 7x7x64:

* ``stream41``: conv, pool, conv, conv, conv  (41 -> 39 -> 13 -> 11 -> 9 -> 7)
* ``stream27``: conv, conv, conv, pool, 1x1 conv  (27 -> 25 -> 23 -> 21 -> 7 -> 7)
* ``stream15``: conv x4  (15 -> 13 -> 11 -> 9 -> 7)

B-NET concatenates ``[41, 27, 15]`` (192 ch) -> 3x3 conv x3 + 1x1 conv (1x1x64) ->
FC 300 -> FC 150 -> FC 23 (ReLU between the FCs; logits out, softmax in the loss).
E-NET reuses the three streams (*f1-NET*, shared with B-NET, frozen while E-NET
trains) plus a second 41-stream (*f2-NET*), concatenates ``[f2_41, f1_41, f1_27,
f1_15]`` (256 ch) -> the same trunk -> FC 300 -> 150 -> 2 (0 = pattern, 1 = depth edge).

How the networks are evaluated fast on whole images (dense, exact) is the job of :mod:`.engine`;
this module holds the networks as the paper specifies them, patch in, logits out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Stream", "KaraaliStreams", "BNet", "ENet", "Trunk", "KARAALI_PATCH", "KARAALI_LEVELS"]

KARAALI_PATCH = 41
#: number of B-NET classes (disk radii 0.5, 0.75, ..., 6.0 px)
KARAALI_LEVELS = 23


class Stream(nn.Module):
    """A stack of VALID convs (no bias, ReLU) with one optional 3x3/3 max-pool after conv ``pool_after``."""

    def __init__(self, kernels: tuple[int, ...], pool_after: int | None, in_channels: int = 3,
                 channels: int = 64) -> None:
        super().__init__()
        chans = [in_channels] + [channels] * len(kernels)
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], k, bias=False) for i, k in enumerate(kernels))
        self.pool_after = pool_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i == self.pool_after:
                x = F.max_pool2d(x, 3, 3, ceil_mode=True)
        return x

    @property
    def step(self) -> int:
        """Pixel spacing of the output grid in the input image."""
        return 1 if self.pool_after is None else 3


def stream41(channels: int = 64) -> Stream:
    return Stream((3, 3, 3, 3), pool_after=0, channels=channels)


def stream27(channels: int = 64) -> Stream:
    return Stream((3, 3, 3, 1), pool_after=2, channels=channels)


def stream15(channels: int = 64) -> Stream:
    return Stream((3, 3, 3, 3), pool_after=None, channels=channels)


class KaraaliStreams(nn.Module):
    """The three multi-scale streams (B-NET's front end = E-NET's f1-NET).

    ``crop27``/``crop15``: start index of the 27x27 / 15x15 crop inside the 41x41
    patch. The authors' code uses ``[8:35]`` / ``[14:29]`` (centred one pixel
    right/below the 41x41 centre; default); 7 / 13 centres them exactly.
    """

    def __init__(self, channels: int = 64, crop27: int = 8, crop15: int = 14) -> None:
        super().__init__()
        if not (0 <= crop27 <= KARAALI_PATCH - 27 and 0 <= crop15 <= KARAALI_PATCH - 15):
            raise ValueError(f"crop27 must be in [0, 14] and crop15 in [0, 26], got {crop27}, {crop15}")
        self.s41, self.s27, self.s15 = stream41(channels), stream27(channels), stream15(channels)
        self.crop27, self.crop15 = int(crop27), int(crop15)

    def forward(self, x41: torch.Tensor, fine: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Stream outputs of 41x41 patches; ``fine``: other patches for the 15 stream (default ``x41``;
        the native-stride evaluation takes the wide streams' patches at the nearest grid point)."""
        c27, c15 = self.crop27, self.crop15
        fine = x41 if fine is None else fine
        return [self.s41(x41), self.s27(x41[..., c27:c27 + 27, c27:c27 + 27]),
                self.s15(fine[..., c15:c15 + 15, c15:c15 + 15])]


def init_weights(module: nn.Module) -> None:
    """He-normal convs and FCs, zero FC biases (the paper gives no init; PyTorch's default
    ``a=sqrt(5)`` uniform lets the signal fade through 8 bias-free ReLU convs on [0, 1] inputs)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Trunk(nn.Module):
    """Concat -> 3x3 conv x3 + 1x1 conv (ReLU) -> FC hidden... -> classes."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 64,
                 hidden: tuple[int, ...] = (300, 150)) -> None:
        super().__init__()
        self.convs = Stream((3, 3, 3, 1), pool_after=None, in_channels=in_channels, channels=channels)
        dims = [channels, *hidden, num_classes]
        self.fcs = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(len(dims) - 1))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.convs(feats).flatten(1)
        return self.head(x)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The FC layers on ``(N, channels)`` features."""
        for i, fc in enumerate(self.fcs):
            x = F.linear(x, fc.weight, fc.bias)
            if i < len(self.fcs) - 1:
                x = F.relu(x)
        return x


class BNet(nn.Module):
    """B-NET: 41x41 RGB patch in [0, 1] -> 23 blur-level logits."""

    def __init__(self, channels: int = 64, num_classes: int = KARAALI_LEVELS, hidden: tuple[int, ...] = (300, 150),
                 crop27: int = 8, crop15: int = 14) -> None:
        super().__init__()
        self.streams = KaraaliStreams(channels, crop27, crop15)
        self.trunk = Trunk(3 * channels, num_classes, channels, tuple(hidden))
        init_weights(self)

    def forward(self, x41: torch.Tensor, fine: torch.Tensor | None = None) -> torch.Tensor:
        """``fine``: patches of the 15 stream, see :meth:`KaraaliStreams.forward`."""
        return self.trunk(torch.cat(self.streams(x41, fine), 1))


class ENet(nn.Module):
    """E-NET: f1-NET (B-NET's streams) + f2-NET (a second 41-stream) -> pattern (0) / depth (1) logits."""

    def __init__(self, channels: int = 64, num_classes: int = 2, hidden: tuple[int, ...] = (300, 150),
                 crop27: int = 8, crop15: int = 14) -> None:
        super().__init__()
        self.f1 = KaraaliStreams(channels, crop27, crop15)
        self.f2 = stream41(channels)
        self.trunk = Trunk(4 * channels, num_classes, channels, tuple(hidden))
        init_weights(self)

    def forward(self, x41: torch.Tensor, fine: torch.Tensor | None = None) -> torch.Tensor:
        """``fine``: patches of the 15 stream, see :meth:`KaraaliStreams.forward`."""
        return self.trunk(torch.cat([self.f2(x41), *self.f1(x41, fine)], 1))

    def load_f1_from(self, bnet: BNet) -> None:
        """Copy B-NET's streams into f1-NET (Sec. IV-B: the shared weights)."""
        self.f1.load_state_dict(bnet.streams.state_dict())

    def shares_f1_with(self, bnet: BNet) -> bool:
        a, b = self.f1.state_dict(), bnet.streams.state_dict()
        return all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)
