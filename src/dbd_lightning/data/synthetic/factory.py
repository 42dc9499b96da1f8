"""The renderer of a config: the config's scene kind selects it (collage or photographic scenes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .config import PhotoSceneConfig, RenderConfig, SceneConfig, resolve_config
from .core import LayeredRenderer
from .photographic import PhotographicRenderer
from .renderer import SyntheticRenderer

__all__ = ["make_renderer"]

_RENDERERS: dict[type[SceneConfig], type[LayeredRenderer]] = {
    RenderConfig: SyntheticRenderer,
    PhotoSceneConfig: PhotographicRenderer,
}


def make_renderer(config: str | SceneConfig | Mapping[str, Any], seed: int = 0) -> LayeredRenderer:
    """The renderer of ``config`` (a preset name, a config of either scene kind, or a mapping of
    fields, as :func:`.config.resolve_config` takes) with dataset ``seed``."""
    cfg = resolve_config(config)
    return _RENDERERS[type(cfg)](cfg, seed=seed)
