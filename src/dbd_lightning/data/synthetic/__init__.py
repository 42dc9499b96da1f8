"""Synthetic thin-lens defocus data: textures, layered scenes, renderer, dataset, writer.

Importing this package is light (numpy + OpenCV); the torch ``Dataset``
(:class:`SyntheticDefocusDataset`) is imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .bench import bench_renderer
from .renderer import (
    PRESETS,
    SAMPLE_KEYS,
    RenderConfig,
    SyntheticRenderer,
    get_preset,
    resolve_config,
    sample_name,
)
from .textures import BUNDLED_PHOTOS, TextureBank
from .writer import write_dataset

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import SyntheticDefocusDataset

__all__ = [
    "BUNDLED_PHOTOS",
    "PRESETS",
    "SAMPLE_KEYS",
    "RenderConfig",
    "SyntheticDefocusDataset",
    "SyntheticRenderer",
    "TextureBank",
    "bench_renderer",
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
