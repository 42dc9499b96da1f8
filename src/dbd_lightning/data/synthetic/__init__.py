"""Synthetic thin-lens defocus data: textures, layered scenes, configs + presets, labels, renderers, dataset, writer.

Importing this package is light (numpy + OpenCV); the torch ``Dataset``
(:class:`SyntheticDefocusDataset`) is imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import PRESETS, PhotoSceneConfig, RenderConfig, get_preset, resolve_config
from .labels import SAMPLE_KEYS
from .recipes import (
    KARAALI_BNET_RADII,
    KARAALI_ENET_RADII,
    btbnet_pretrain_sample,
    btbnet_pretrain_variants,
    karaali_bnet_sample,
    karaali_enet_sample,
    uniform_disk_blur,
)
from .renderer import SyntheticRenderer, sample_name
from .textures import BUNDLED_PHOTOS, TextureBank
from .writer import write_dataset

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import SyntheticDefocusDataset

__all__ = [
    "BUNDLED_PHOTOS",
    "KARAALI_BNET_RADII",
    "KARAALI_ENET_RADII",
    "PRESETS",
    "PhotoSceneConfig",
    "SAMPLE_KEYS",
    "RenderConfig",
    "SyntheticDefocusDataset",
    "SyntheticRenderer",
    "TextureBank",
    "btbnet_pretrain_sample",
    "btbnet_pretrain_variants",
    "get_preset",
    "karaali_bnet_sample",
    "karaali_enet_sample",
    "resolve_config",
    "sample_name",
    "uniform_disk_blur",
    "write_dataset",
]


def __getattr__(name: str) -> Any:
    if name == "SyntheticDefocusDataset":
        from .dataset import SyntheticDefocusDataset

        return SyntheticDefocusDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
