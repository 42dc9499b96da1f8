"""Maps as pixels: how predict and the app draw a focus map, a blur-radius map, an overlay and a mask.

One place for the drawing, so the files ``python -m dbd_lightning.predict`` writes and the
pictures ``python -m dbd_lightning.app`` shows are the same pixels for the same map:

* :func:`to_uint8`: the in-focus probability ``[0, 1]`` as grey levels (white = in focus);
* :func:`normalised_png`: any real map (Karaali's blur radius in pixels) min-max scaled to
  0..255, with the range used (the legend of the picture);
* :func:`overlay`: the photo blended with the colour-mapped focus map;
* :func:`focus_mask`: the thresholded map (white = in focus).

Everything works in row blocks, so a 48 MP photo needs no full-size float32 temporaries.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["focus_mask", "normalised_png", "overlay", "to_uint8"]

_ROWS = 256  # rows per block when converting full-size maps (bounds the float32 temporaries)


def to_uint8(focus: np.ndarray) -> np.ndarray:
    """A [0, 1] map as uint8 0..255 (rounded), converted in row blocks (no full-size float temporaries)."""
    focus = np.asarray(focus)
    out = np.empty(focus.shape, np.uint8)
    for r in range(0, focus.shape[0], _ROWS):
        block = focus[r:r + _ROWS].astype(np.float32) * 255.0 + 0.5
        out[r:r + _ROWS] = np.clip(block, 0, 255).astype(np.uint8)
    return out


def normalised_png(arr: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Min-max normalised uint8 image of any real map, with the (min, max) used."""
    arr = np.asarray(arr, np.float64)
    finite = arr[np.isfinite(arr)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scaled = (np.nan_to_num(arr, nan=lo) - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return to_uint8(scaled), lo, hi


def overlay(rgb: np.ndarray, focus: np.ndarray, alpha: float = 0.5, bgr: bool = False,
            out: np.ndarray | None = None) -> np.ndarray:
    """The image blended with the colour-mapped focus map (viridis: yellow = in focus, purple = blurred).

    ``bgr``: return it in OpenCV's channel order (predict writes it with ``cv2.imencode`` without a copy).
    ``out``: write into this uint8 array (may be ``rgb`` itself: each row block is read before it is written).
    """
    out = np.empty(rgb.shape, np.uint8) if out is None else out
    for r in range(0, rgb.shape[0], _ROWS):  # row blocks: no full-size float32 copies of a 48 MP photo
        colour = cv2.applyColorMap(to_uint8(focus[r:r + _ROWS]), cv2.COLORMAP_VIRIDIS)
        image = rgb[r:r + _ROWS, :, ::-1] if bgr else rgb[r:r + _ROWS]
        colour = colour if bgr else colour[..., ::-1]
        block = image.astype(np.float32) * (1.0 - alpha) + colour.astype(np.float32) * alpha
        out[r:r + _ROWS] = np.clip(block + 0.5, 0, 255).astype(np.uint8)
    return out


def focus_mask(focus: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The in-focus mask: 255 where the in-focus probability is ``>= threshold``, else 0 (uint8)."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    focus = np.asarray(focus)
    out = np.empty(focus.shape, np.uint8)
    for r in range(0, focus.shape[0], _ROWS):
        out[r:r + _ROWS] = np.where(focus[r:r + _ROWS] >= threshold, 255, 0)
    return out
