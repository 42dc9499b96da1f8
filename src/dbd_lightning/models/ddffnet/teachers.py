"""Frozen teachers of D-DFFNet stage 2 (Sec. III-B) and R-DFFNet (App. C).

A teacher maps the (ImageNet-normalised) image batch to a dict with
``features`` (its four encoder levels, strides 4..32) and, for depth teachers,
``depth`` (B,1,H,W) normalised to [0, 1]. Teachers are frozen for good:
``eval()`` + ``requires_grad_(False)``, and :meth:`FrozenTeacher.train` refuses
to leave eval mode (the authors' code never calls ``eval()`` on its teachers,
so their BatchNorm statistics drift during stage 2; we do not reproduce that).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ...utils.checkpoint import load_weights

log = logging.getLogger(__name__)


class FrozenTeacher(nn.Module):
    """Base class: frozen, always in eval mode, run without grad."""

    channels: list[int]

    def freeze(self) -> FrozenTeacher:
        super().train(False)
        self.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> FrozenTeacher:  # noqa: D401 - keep eval whatever the caller asks
        """Teachers stay in eval mode whatever ``mode`` says."""
        return super().train(False)

    def extract(self, image: torch.Tensor) -> dict:
        raise NotImplementedError

    def check_channels(self, expected) -> None:
        """Fail clearly when a config's declared ``channels`` differ from the built teacher's."""
        if expected is not None and [int(c) for c in expected] != list(self.channels):
            raise ValueError(f"{type(self).__name__}: config says channels={list(expected)} but the "
                             f"teacher has {self.channels}")

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> dict:
        return self.extract(image)


def build_network(net) -> nn.Module:
    """``net`` itself, or the network a config node describes (the teacher's config sets
    ``_recursive_: false``), built without its init-only keys: the stage-1 config the defocus teacher
    copies may start training from ``init_ckpt``, which the teacher's checkpoint replaces."""
    if isinstance(net, nn.Module):
        return net
    from ...utils.config import instantiate_network

    return instantiate_network(net)


def _load(net: nn.Module, ckpt: str | None, what: str) -> None:
    if ckpt in (None, ""):
        log.warning("%s teacher has no checkpoint (ckpt=null): using a randomly initialised network. "
                    "Fine for smoke tests only; give teacher.*.ckpt=/path/to/run/checkpoints/*.ckpt", what)
        return
    if not Path(ckpt).is_file():
        raise FileNotFoundError(f"{what} teacher checkpoint not found: {ckpt}")
    load_weights(net, ckpt, strict=True, prefix="net.")
    log.info("%s teacher weights: %s", what, ckpt)


class DefocusTeacher(FrozenTeacher):
    """The stage-1 defocus model (e.g. DFFNet), rebuilt from a config and loaded from its checkpoint.

    Args:
        net: the network (same architecture as stage 1; Hydra builds it).
        ckpt: a stage-1 Lightning checkpoint (``net.*`` keys) or a bare state dict,
            loaded with ``weights_only=True``; ``None`` = random weights (smoke tests).
    Features: ``phi(x; theta_d^t)`` of eq. 3 = the network's encoder levels.
    """

    def __init__(self, net: nn.Module, ckpt: str | None = None, channels: list[int] | None = None) -> None:
        super().__init__()
        self.net = net = build_network(net)
        _load(net, ckpt, "defocus")
        self.channels = list(net.encoder.channels) if hasattr(net, "encoder") else []
        self.check_channels(channels)
        self.freeze()

    def extract(self, image: torch.Tensor) -> dict:
        if hasattr(self.net, "encoder"):
            return {"features": list(self.net.encoder(image))}
        return {"features": list(self.net(image)["features"])}


class DepthTeacher(FrozenTeacher):
    """The offline depth teacher: a :class:`~dbd_lightning.models.ddffnet.depth_net.DepthNet` trained by
    ``model=depthnet data=synthetic`` (``ckpt`` = that run's checkpoint).

    Features: ``phi(x; theta_m^t)`` of eq. 3 = its encoder levels; ``depth`` = its
    prediction in [0, 1] (R-DFFNet pseudo-labels).
    """

    def __init__(self, net: nn.Module, ckpt: str | None = None, channels: list[int] | None = None) -> None:
        super().__init__()
        self.net = net
        _load(net, ckpt, "depth")
        self.channels = list(net.encoder.channels)
        self.check_channels(channels)
        self.freeze()

    def extract(self, image: torch.Tensor) -> dict:
        out = self.net(image)
        return {"features": list(out["features"]), "depth": out["depth"]}


class NoTeacher(FrozenTeacher):
    """``teacher/depth=none``: no depth teacher (the "w/o depth distillation" ablation of DD / R-DFFNet).

    Its output is ``{"depth": None}``; :class:`~dbd_lightning.models.ddffnet.depth_losses.ResponseDepthDistillationLoss`
    then computes only the detection terms. It has no parameters and no features, so it cannot
    stand in for a feature-distillation teacher (its ``channels`` are empty).
    """

    def __init__(self) -> None:
        super().__init__()
        self.channels = []
        self.freeze()

    def extract(self, image: torch.Tensor) -> dict:
        return {"depth": None}
