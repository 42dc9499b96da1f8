"""The geometry every network predictor shares, without torch: whole image, tiles, scale-aware modes.

:class:`ImagePredictor` turns one native-resolution photo into the in-focus map by calling
``_probabilities(crops, input_size)`` (a subclass's: the network, in torch or in onnxruntime)
on the whole image, on tiles (blended with :func:`~.tiling.blend_tiles`) or on the image
resized by a pixel scale (:mod:`.modes`), optionally fused over mirrored and rescaled copies
(test-time fusion, :meth:`ImagePredictor._fused_probabilities`). Kept free of torch so that a released model whose
ONNX graph is already built predicts without importing it
(:class:`~.onnx_predictor.OnnxGraphPredictor`); :class:`~.predictor.CheckpointPredictor` is the
torch subclass. What it does is set by one :class:`~.settings.InferenceSettings`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from ..data.normalization import IMAGENET_MEAN, IMAGENET_STD
from .modes import scaled_size, tile_side
from .settings import InferenceSettings, as_settings, overlap_pixels
from .tiling import blend_tiles


class ImagePredictor:
    """Whole-image / tiled / scale-aware prediction over an abstract ``_probabilities``.

    Args:
        settings: :class:`~.settings.InferenceSettings` (image size, ``infer.*``, ``tile.*``), a mapping in the
            config's layout (``{"tile": {"mode": False}}``, checked), or ``None`` for the defaults.
        size_multiple: the network's stride: a size the network is given is rounded to a multiple of it.
    """

    def __init__(self, settings: InferenceSettings | Mapping | None = None, size_multiple: int = 32) -> None:
        self.settings = as_settings(settings)
        self.size_multiple = int(size_multiple)

    @property
    def image_size(self) -> tuple[int, int] | None:
        """Network input ``(h, w)``; ``None``: the native size rounded to ``size_multiple``."""
        return self.settings.image_size

    @property
    def fusion_scales(self) -> tuple[float, ...]:
        return self.settings.infer.fusion_scales

    @property
    def flip(self) -> bool:
        return self.settings.infer.flip

    # ---------------------------------------------------------------- helpers
    def uses_tiles(self, h: int, w: int) -> bool:
        mode, tile = self.settings.infer.mode, self.settings.tile
        if mode != "resize":
            return mode == "tile"
        if tile.mode == "auto":
            return max(h, w) > tile.above
        return bool(tile.mode)

    def _input_size(self, h: int, w: int) -> tuple[int, int]:
        if self.image_size:
            return self.image_size
        m = self.size_multiple
        return max(m, round(h / m) * m), max(m, round(w / m) * m)

    def _resized_crops(self, crops: list[np.ndarray], input_size: tuple[int, int] | None
                       ) -> tuple[list[tuple[int, int]], list[np.ndarray]]:
        """Each crop's own size, and the crops as the network sees them: the eval transform's first step, a cv2
        bilinear resize of the uint8 image to ``input_size`` (default :meth:`_input_size` of the first crop)."""
        sizes = [c.shape[:2] for c in crops]
        ih, iw = input_size or self._input_size(*sizes[0])
        return sizes, [c if c.shape[:2] == (ih, iw) else cv2.resize(c, (iw, ih), interpolation=cv2.INTER_LINEAR)
                       for c in crops]

    def _probabilities(self, crops: list[np.ndarray], input_size: tuple[int, int] | None = None) -> list[np.ndarray]:
        """In-focus probability (float32, the crop's own size) of each uint8 RGB crop; network input ``input_size``."""
        raise NotImplementedError

    @property
    def forwards_per_crop(self) -> int:
        """Network passes per crop: 1 without test-time fusion, ``len(fusion_scales) * (1 + flip)`` with it."""
        return len(self.fusion_scales) * (2 if self.flip else 1)

    def _fused_probabilities(self, crops: list[np.ndarray], input_size: tuple[int, int] | None = None
                             ) -> list[np.ndarray]:
        """Test-time fusion: the mean in-focus probability over the network input ``input_size`` times each of
        ``fusion_scales`` (each side rounded to ``size_multiple``) and, with ``flip``, the horizontally mirrored
        crops (their maps mirrored back). With the defaults (``flip=False``, scales ``[1.0]``) this is one
        :meth:`_probabilities` call, unchanged. Each probability is at the crop's own size, so the views average
        pixel by pixel. Flips and rescalings leave the defocus cue intact (the blur of an edge is the same mirrored;
        a rescaled copy shows it at another pixel scale, which is what the fusion averages over)."""
        if self.forwards_per_crop == 1 and self.fusion_scales[0] == 1.0:
            return self._probabilities(crops, input_size)
        base = input_size or self._input_size(*crops[0].shape[:2])
        mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops] if self.flip else None
        total: list[np.ndarray] | None = None
        for s in self.fusion_scales:
            size = base if s == 1.0 else scaled_size(base[0], base[1], s, self.size_multiple)
            views = [self._probabilities(crops, size)]
            if mirrored is not None:
                views.append([p[:, ::-1] for p in self._probabilities(mirrored, size)])
            for view in views:
                total = [p.astype(np.float32, copy=True) for p in view] if total is None else [
                    t + p for t, p in zip(total, view, strict=True)]
        n = np.float32(self.forwards_per_crop)
        return [np.ascontiguousarray(t / n) for t in total]

    def tile_geometry(self) -> tuple[tuple[int, int], int]:
        """``((tile height, tile width), overlap)`` in native pixels; both overlaps are fractions of the tile side.

        ``infer.mode=tile``: tiles of ``image_size / infer.scale`` overlapping by ``infer.overlap`` of their shorter
        side; ``infer.mode=resize``: ``tile.size`` squares overlapping by ``tile.overlap`` of ``tile.size``.
        """
        s = self.settings
        if s.infer.mode == "tile":
            size = s.image_size or (s.tile.size, s.tile.size)
            tile = (tile_side(size[0], s.infer.scale), tile_side(size[1], s.infer.scale))
            return tile, overlap_pixels(s.infer.overlap, min(tile))
        return (s.tile.size, s.tile.size), overlap_pixels(s.tile.overlap, s.tile.size)

    def _tiled(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        tile, overlap = self.tile_geometry()
        scale = self.settings.infer.scale if self.settings.infer.mode == "tile" else None

        def predict(boxes):
            crops = [rgb[y:y + th, x:x + tw] for y, x, th, tw in boxes]
            if scale is not None:  # tile mode: seen at `scale` also when the image is smaller than a tile
                th, tw = crops[0].shape[:2]
                return self._fused_probabilities(crops, scaled_size(th, tw, scale, self.size_multiple))
            return self._fused_probabilities(crops)

        return blend_tiles((h, w), tile, overlap, predict, batch=self.settings.tile.batch,
                           window=self.settings.tile.window)

    # -------------------------------------------------------------- protocol
    def predict_image(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"predict_image expects uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        if self.uses_tiles(h, w):
            focus = self._tiled(rgb)
        elif self.settings.infer.mode == "scale":
            focus = self._fused_probabilities([rgb], scaled_size(h, w, self.settings.infer.scale,
                                                                 self.size_multiple))[0]
        else:
            focus = self._fused_probabilities([rgb])[0]
        return {"focus": focus}


def run_input(cfg: DictConfig, settings: InferenceSettings, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> tuple[InferenceSettings, list[float], list[float]]:
    """``settings`` with ``image_size`` set to the run's (``data.image_size``, else its eval transform's size) where
    unset, and ``mean`` / ``std`` (the run's eval transform's where not given)."""
    tf = OmegaConf.select(cfg, "data.datamodule.eval_transform", default=None) or {}
    if settings.image_size is None:
        size = OmegaConf.select(cfg, "data.image_size", default=None) or tf.get("size") or (320, 320)
        settings = dataclasses.replace(settings, image_size=OmegaConf.to_container(size) if isinstance(
            size, ListConfig) else size)
    mean = list(mean) if mean is not None else list(tf.get("mean", IMAGENET_MEAN))
    std = list(std) if std is not None else list(tf.get("std", IMAGENET_STD))
    return settings, mean, std
