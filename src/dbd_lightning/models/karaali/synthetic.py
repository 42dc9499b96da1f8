"""Karaali's whole-image training recipes (Karaali, Harte & Jung, Sec. IV-A; rendering only).

* B-NET: the whole sharp image convolved with one disk (pillbox) PSF among the 23
  radii of :data:`.levels.BNET_RADII` (0.5, 0.75, ..., 6.0 px). With our
  anti-aliased disk, radius 0.5 px is the identity kernel.
* E-NET: a foreground (object mask) blurred with one disk radius and alpha-blended,
  with its mask blurred by the same disk, over a background blurred with a larger
  radius; radii from :data:`.levels.ENET_RADII` = {0, 1, 3, 5}.

``source`` arguments are an image array or a texture bank (see
:mod:`dbd_lightning.data.synthetic.sources`). Patch extraction at edge points is
:mod:`.patches`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ...data.synthetic.scene import SHAPES, random_shape
from ...data.synthetic.sources import as_float_rgb, source_image, to_uint8
from ...data.synthetic.textures import TextureBank
from ...ops.psf import blur, disk_kernel
from .levels import BNET_RADII, ENET_RADII

__all__ = ["karaali_bnet_sample", "karaali_enet_composite", "karaali_enet_sample", "uniform_disk_blur"]


def uniform_disk_blur(image: np.ndarray, radius: float) -> np.ndarray:
    """Whole-image disk (pillbox) blur of ``radius`` px; float32 in, float32 out."""
    return blur(as_float_rgb(image) if np.asarray(image).dtype == np.uint8 else image, disk_kernel(radius))


def karaali_bnet_sample(
    rng: np.random.Generator,
    source: np.ndarray | TextureBank,
    size: tuple[int, int] | int | None = (320, 320),
    level: int | None = None,
) -> dict[str, Any]:
    """Karaali B-NET training image: the whole image blurred by one of the 23 disk radii.

    Returns ``image`` uint8, ``radius`` (px), ``level`` (index into
    :data:`.levels.BNET_RADII`). Patch extraction at Canny edge points and the
    per-level balancing belong to the training pipeline, not here.
    """
    level = int(rng.integers(len(BNET_RADII))) if level is None else int(level)
    if not 0 <= level < len(BNET_RADII):
        raise ValueError(f"level must be in [0, {len(BNET_RADII) - 1}], got {level}")
    r = BNET_RADII[level]
    img = uniform_disk_blur(source_image(rng, source, size), r)
    return {"image": to_uint8(img), "radius": float(r), "level": level}


def karaali_enet_composite(
    foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray, r_fg: float, r_bg: float
) -> np.ndarray:
    """``I = (k_fg * (a F)) + (1 - k_fg * a) (k_bg * B)`` with disk PSFs ``k`` (float32 RGB)."""
    fg, bgi = as_float_rgb(foreground), as_float_rgb(background)
    a = np.asarray(alpha, np.float32)
    if a.max() > 1.0:
        a = a / np.float32(255.0)
    if fg.shape != bgi.shape or a.shape != fg.shape[:2]:
        raise ValueError(f"shape mismatch: fg {fg.shape}, bg {bgi.shape}, alpha {a.shape}")
    k_fg = disk_kernel(r_fg)
    c = blur(fg * a[..., None], k_fg)
    a_b = blur(a, k_fg)
    return c + (1.0 - a_b)[..., None] * blur(bgi, disk_kernel(r_bg))


def karaali_enet_sample(
    rng: np.random.Generator,
    source: TextureBank,
    size: tuple[int, int] | int = (320, 320),
    radii: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """E-NET composite: random-shape foreground over a more blurred background.

    ``radii = (r_fg, r_bg)`` with ``r_fg < r_bg`` from :data:`.levels.ENET_RADII`
    (6 combinations) unless given. Returns ``image`` uint8, ``mask`` uint8 (the
    foreground, label >= 0.5 coverage), ``r_fg``, ``r_bg``.
    """
    if isinstance(size, int):
        size = (size, size)
    if radii is None:
        pairs = [(a, b) for i, a in enumerate(ENET_RADII) for b in ENET_RADII[i + 1 :]]
        r_fg, r_bg = pairs[int(rng.integers(len(pairs)))]
    else:
        r_fg, r_bg = (float(r) for r in radii)
    fg, pid = source.photo(rng, size)
    bgi, _ = source.photo(rng, size, exclude=(pid,))
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    diameter = rng.uniform(0.35, 0.7) * min(size)
    shape = random_shape(rng, size, diameter, kind)
    # keep the object fully inside: recentre by rolling its bounding box to the middle
    x, y, bw, bh = cv2.boundingRect(shape)
    if bw * bh:
        dy, dx = size[0] // 2 - (y + bh // 2), size[1] // 2 - (x + bw // 2)
        shape = np.roll(shape, (dy, dx), axis=(0, 1))
    alpha = shape.astype(np.float32) / np.float32(255.0)
    img = karaali_enet_composite(fg, bgi, alpha, r_fg, r_bg)
    return {
        "image": to_uint8(img),
        "mask": (alpha >= 0.5).astype(np.uint8),
        "r_fg": float(r_fg),
        "r_bg": float(r_bg),
    }
