"""Source images for the papers' whole-image recipes (BTBNet's half blur, Karaali's disk blur).

A *source* is either an image array (``HxWx3`` uint8, or float in [0, 1]; resized to
``size`` when one is given) or a :class:`~.textures.TextureBank`, from which a random
photo crop of ``size`` is drawn. Shared by ``models/btbnet`` and ``models/karaali``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .textures import TextureBank

__all__ = ["as_float_rgb", "source_image", "to_uint8"]


def as_float_rgb(image: np.ndarray) -> np.ndarray:
    """``HxW`` / ``HxWx3`` / ``HxWx4`` uint8 or float -> float32 ``HxWx3`` in [0, 1]."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    image = image[..., :3]
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8 (rounded, clipped)."""
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def source_image(
    rng: np.random.Generator, source: np.ndarray | TextureBank, size: tuple[int, int] | int | None
) -> np.ndarray:
    """The float32 RGB image of ``source`` (a photo crop drawn with ``rng`` from a bank)."""
    if isinstance(size, int):
        size = (size, size)
    if isinstance(source, TextureBank):
        if size is None:
            raise ValueError("size is required when drawing from a TextureBank")
        return source.photo(rng, size)[0]
    img = as_float_rgb(source)
    if size is not None and img.shape[:2] != tuple(size):
        img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return img
