"""The geometry every network predictor shares, without torch: whole image, tiles, scale-aware modes.

:class:`ImagePredictor` turns one native-resolution photo into the in-focus map by calling
``_probabilities(crops, input_size)`` (a subclass's: the network, in torch or in onnxruntime)
on the whole image, on tiles (blended with :func:`~.tiling.blend_tiles`) or on the image
resized by a pixel scale (:mod:`.modes`), optionally fused over mirrored and rescaled copies
(test-time fusion, :meth:`ImagePredictor._fused_probabilities`). Kept free of torch so that a released model whose
ONNX graph is already built predicts without importing it
(:class:`~.onnx_predictor.OnnxGraphPredictor`); :class:`~.predictor.CheckpointPredictor` is the
torch subclass. The arguments are documented there.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from omegaconf import DictConfig, OmegaConf

from ..data.normalization import IMAGENET_MEAN, IMAGENET_STD
from .modes import INFER_MODES, scaled_size, tile_side
from .tiling import blend_tiles


class ImagePredictor:
    """Whole-image / tiled / scale-aware prediction over an abstract ``_probabilities``."""

    def __init__(
        self,
        image_size: Sequence[int] | None = (320, 320),
        tile: bool | str = "auto",
        tile_above: int = 1280,
        tile_size: int = 640,
        tile_overlap: int = 128,
        tile_batch: int = 4,
        size_multiple: int = 32,
        tile_window: str = "hann",
        mode: str = "resize",
        scale: float = 1.0,
        overlap_fraction: float = 0.25,
        flip: bool = False,
        fusion_scales: Sequence[float] = (1.0,),
    ) -> None:
        if tile not in ("auto", True, False):
            raise ValueError(f"tile must be 'auto', true or false, got {tile!r}")
        if mode not in INFER_MODES:
            raise ValueError(f"infer.mode must be one of {INFER_MODES}, got {mode!r}")
        if not float(scale) > 0:
            raise ValueError(f"infer.scale must be > 0, got {scale!r}")
        self.mode, self.scale, self.tile_window = mode, float(scale), str(tile_window)
        self.overlap_fraction = float(overlap_fraction)
        self.image_size = tuple(int(s) for s in image_size) if image_size else None
        self.tile, self.tile_above = tile, int(tile_above)
        self.tile_size, self.tile_overlap, self.tile_batch = int(tile_size), int(tile_overlap), int(tile_batch)
        self.size_multiple = int(size_multiple)
        self.flip = _switch(flip, "infer.flip")
        self.fusion_scales = _fusion_scales(fusion_scales)

    # ---------------------------------------------------------------- helpers
    def uses_tiles(self, h: int, w: int) -> bool:
        if self.mode != "resize":
            return self.mode == "tile"
        if self.tile == "auto":
            return max(h, w) > self.tile_above
        return bool(self.tile)

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

    def _tiled(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        if self.mode == "tile":
            size = self.image_size or (self.tile_size, self.tile_size)
            tile = (tile_side(size[0], self.scale), tile_side(size[1], self.scale))
            overlap = round(self.overlap_fraction * min(tile))
        else:
            tile, overlap = (self.tile_size, self.tile_size), self.tile_overlap

        def predict(boxes):
            crops = [rgb[y:y + th, x:x + tw] for y, x, th, tw in boxes]
            if self.mode == "tile":  # seen at `scale` also when the image is smaller than a tile
                th, tw = crops[0].shape[:2]
                return self._fused_probabilities(crops, scaled_size(th, tw, self.scale, self.size_multiple))
            return self._fused_probabilities(crops)

        return blend_tiles((h, w), tile, overlap, predict, batch=self.tile_batch, window=self.tile_window)

    # -------------------------------------------------------------- protocol
    def predict_image(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"predict_image expects uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        if self.uses_tiles(h, w):
            focus = self._tiled(rgb)
        elif self.mode == "scale":
            focus = self._fused_probabilities([rgb], scaled_size(h, w, self.scale, self.size_multiple))[0]
        else:
            focus = self._fused_probabilities([rgb])[0]
        return {"focus": focus}


def _switch(value, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"{key} must be true or false, got {value!r}")


def _fusion_scales(scales) -> tuple[float, ...]:
    """``infer.fusion_scales`` as a tuple of positive floats (a single number is one scale)."""
    values = [scales] if isinstance(scales, int | float) and not isinstance(scales, bool) else list(scales or [])
    try:
        out = tuple(float(v) for v in values if not isinstance(v, bool))
    except (TypeError, ValueError):
        out = ()
    if not out or len(out) != len(values) or not all(v > 0 for v in out):
        raise ValueError(f"infer.fusion_scales must be a list of positive numbers (e.g. [1.0] or [0.75,1.0,1.25]), "
                         f"got {scales!r}")
    return out


def run_input_defaults(cfg: DictConfig, kwargs: dict) -> dict:
    """``kwargs`` with ``image_size`` / ``mean`` / ``std`` taken from the run's eval transform where unset."""
    kwargs = dict(kwargs)
    tf = OmegaConf.select(cfg, "data.datamodule.eval_transform", default=None) or {}
    defaults = {
        "image_size": OmegaConf.select(cfg, "data.image_size", default=None) or tf.get("size") or (320, 320),
        "mean": tf.get("mean", IMAGENET_MEAN),
        "std": tf.get("std", IMAGENET_STD),
    }
    for k, v in defaults.items():
        if kwargs.get(k) is None:
            kwargs[k] = list(v) if not isinstance(v, str) else v
    return kwargs
