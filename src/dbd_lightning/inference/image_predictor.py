"""The geometry every network predictor shares, without torch: whole image, tiles, scale-aware modes.

:class:`ImagePredictor` turns one native-resolution photo into the in-focus map by calling
``_probabilities(crops, input_size)`` (a subclass's: the network, in torch or in onnxruntime)
on the whole image, on tiles (blended with :func:`~.tiling.blend_tiles`) or on the image
resized by a pixel scale (:mod:`.modes`). Kept free of torch so that a released model whose
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
                return self._probabilities(crops, scaled_size(th, tw, self.scale, self.size_multiple))
            return self._probabilities(crops)

        return blend_tiles((h, w), tile, overlap, predict, batch=self.tile_batch, window=self.tile_window)

    # -------------------------------------------------------------- protocol
    def predict_image(self, rgb: np.ndarray) -> dict[str, np.ndarray]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"predict_image expects uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        if self.uses_tiles(h, w):
            focus = self._tiled(rgb)
        elif self.mode == "scale":
            focus = self._probabilities([rgb], scaled_size(h, w, self.scale, self.size_multiple))[0]
        else:
            focus = self._probabilities([rgb])[0]
        return {"focus": focus}


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
