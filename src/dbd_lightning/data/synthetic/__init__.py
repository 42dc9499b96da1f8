"""Synthetic thin-lens defocus data: textures, layered scenes, configs + presets, labels, the renderer core
(:mod:`.core`) and its two scene kinds, dataset, writer.

Importing this package is light (numpy + OpenCV); the torch ``Dataset``
(:class:`SyntheticDefocusDataset`) is imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import PRESETS, PhotoSceneConfig, RenderConfig, SceneConfig, get_preset, resolve_config
from .labels import SAMPLE_KEYS
from .renderer import SyntheticRenderer, sample_name
from .textures import BUNDLED_PHOTOS, TextureBank
from .writer import write_dataset

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import SyntheticDefocusDataset

__all__ = [
    "BUNDLED_PHOTOS",
    "PRESETS",
    "PhotoSceneConfig",
    "SAMPLE_KEYS",
    "RenderConfig",
    "SceneConfig",
    "SyntheticDefocusDataset",
    "SyntheticRenderer",
    "TextureBank",
    "get_preset",
    "resolve_config",
    "sample_name",
    "write_dataset",
]


def __getattr__(name: str) -> Any:
    if name == "SyntheticDefocusDataset":
        from .dataset import SyntheticDefocusDataset

        return SyntheticDefocusDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
