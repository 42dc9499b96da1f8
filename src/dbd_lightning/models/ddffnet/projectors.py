"""Feature-alignment projectors A_theta of D-DFFNet (eq. 3; Li & Bilen, ECCV 2020)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn


def projector(in_channels: int, out_channels: int) -> nn.Conv2d:
    """1x1 convolution, no bias, xavier-normal init (student C_s -> teacher C_t)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
    nn.init.xavier_normal_(conv.weight)
    return conv


class ProjectorBank(nn.ModuleDict):
    """One projector per teacher and encoder level: ``bank[teacher][level]``.

    Args:
        student_channels: the student's encoder channels per level.
        teachers: teacher name -> its channels per level (``None`` = same as
            the student, i.e. C -> C as in the paper).
    """

    def __init__(self, student_channels: Sequence[int], teachers: Mapping[str, Sequence[int] | None]) -> None:
        super().__init__()
        self.student_channels = [int(c) for c in student_channels]
        for name, channels in teachers.items():
            out = self.student_channels if channels is None else [int(c) for c in channels]
            if len(out) != len(self.student_channels):
                raise ValueError(f"teacher {name!r}: {len(out)} levels for {len(self.student_channels)} student levels")
            self[name] = nn.ModuleList([projector(cs, ct) for cs, ct in zip(self.student_channels, out, strict=True)])

    def teacher_channels(self, name: str) -> list[int]:
        return [conv.out_channels for conv in self[name]]

    def project(self, features: Sequence[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        """Projected student features for every teacher."""
        return {name: [conv(f) for conv, f in zip(convs, features, strict=True)] for name, convs in self.items()}
