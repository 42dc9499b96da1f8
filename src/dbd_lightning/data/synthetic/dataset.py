"""PyTorch ``Dataset`` of on-the-fly synthetic defocus samples (no transforms, numpy out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import Dataset

from ...utils import key_checks as kc
from .config import PRESETS, SceneConfig, resolve_config
from .factory import make_renderer
from .renderer import sample_name

__all__ = ["SyntheticDefocusDataset"]


class SyntheticDefocusDataset(Dataset):
    """``length`` deterministic samples of the thin-lens renderer.

    Args:
        length: number of samples.
        seed: dataset seed (sample ``i`` is always the same image for a seed).
        preset: preset name (``shallow``, ``wide``, ``random``, or ``photographic`` for
            :class:`.photographic.PhotographicRenderer` scenes), a :class:`RenderConfig` /
            :class:`PhotoSceneConfig`, or a mapping of config fields (optionally with a base
            ``preset`` key), resolved by :func:`.config.resolve_config`.
        size: output ``(H, W)`` or an int for square images; ``None`` keeps the
            config's size.
        overrides: further :class:`RenderConfig` (or :class:`PhotoSceneConfig`) fields.
        photo_split: photographic scenes only: ``train`` / ``val`` / ``test`` (disjoint photos).

    ``dataset[i]`` is the renderer's numpy dict (``image`` uint8 HxWx3 RGB,
    ``mask``, ``radius``, ``depth``, ``dof_edge``, ``edge_type``, ``layers``)
    plus ``name = f"synth_{seed}_{i:06d}"``. No transform or tensor conversion
    happens here. The object is picklable (DataLoader workers).
    """

    #: the config arguments train checks before the run (:func:`dbd_lightning.utils.validate.check_data_args`)
    ARG_CHECKS = {
        "length": kc.whole(0, example=2000),
        "preset": kc.Check(lambda v: isinstance(v, Mapping) or (isinstance(v, str) and v in PRESETS),
                           f"one of {', '.join(sorted(PRESETS))} (or a mapping of scene fields)", "random"),
        "size": kc.image_size(nullable=True),
    }

    def __init__(
        self,
        length: int = 1000,
        seed: int = 0,
        preset: str | SceneConfig | Mapping[str, Any] = "random",
        size: int | Sequence[int] | None = None,
        overrides: Mapping[str, Any] | None = None,
        photo_split: str | None = None,
    ) -> None:
        length = int(length)
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length = length
        overrides = dict(overrides or {})
        if photo_split is not None:
            overrides["photo_split"] = photo_split
        self.config = resolve_config(preset, size=size, **overrides)
        self.renderer = make_renderer(self.config, seed=seed)
        self.seed = self.renderer.seed

    def __len__(self) -> int:
        return self.length

    def name(self, index: int) -> str:
        """File-style name of sample ``index``."""
        return sample_name(self.seed, index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        sample: dict[str, Any] = self.renderer.render(index)
        sample["name"] = self.name(index)
        return sample

    def __repr__(self) -> str:
        return (
            f"SyntheticDefocusDataset(length={self.length}, seed={self.seed}, "
            f"preset={self.config.name!r}, size={self.config.size})"
        )
