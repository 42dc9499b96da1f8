"""Synthetic-data recipes of the seed papers (rendering part only).

* BTBNet pretraining (Zhao et al., CVPR 2018, Sec. 4.1): half of a sharp image
  is blurred by a 7x7 Gaussian with sigma 2 applied ``k = 1..5`` times; the
  blurred half is the left, right, top or bottom one (4 positions -> 20 images
  per source). In-focus mask = the sharp half.
* Karaali B-NET (Karaali, Harte & Jung, Sec. IV-A): the whole sharp image
  convolved with one disk (pillbox) PSF among 23 radii 0.5, 0.75, ..., 6.0 px.
  With our anti-aliased disk, radius 0.5 px is the identity kernel.
* Karaali E-NET: a foreground (object mask) blurred with one disk radius and
  alpha-blended, with its mask blurred by the same disk, over a background
  blurred with a larger radius; radii from {0, 1, 3, 5}.

``source`` arguments are either an image array (``HxWx3`` uint8 or float in
[0, 1]; resized to ``size`` when given) or a :class:`TextureBank`, from which a
random photo crop of ``size`` is drawn.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ...ops.psf import blur, disk_kernel, gaussian_kernel
from .scene import SHAPES, random_shape
from .textures import TextureBank

__all__ = [
    "BTBNET_POSITIONS",
    "BTBNET_TIMES",
    "BTBNET_SIGMA",
    "BTBNET_KERNEL_SIZE",
    "KARAALI_BNET_RADII",
    "KARAALI_ENET_RADII",
    "btbnet_blur_half",
    "btbnet_pretrain_sample",
    "btbnet_pretrain_variants",
    "uniform_disk_blur",
    "karaali_bnet_sample",
    "karaali_enet_composite",
    "karaali_enet_sample",
]

BTBNET_POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom")
BTBNET_TIMES: tuple[int, ...] = (1, 2, 3, 4, 5)
BTBNET_SIGMA: float = 2.0
BTBNET_KERNEL_SIZE: int = 7
#: The 23 B-NET blur levels (disk radius, px): 0.5, 0.75, ..., 6.0.
KARAALI_BNET_RADII: tuple[float, ...] = tuple(0.5 + 0.25 * i for i in range(23))
#: E-NET foreground/background radii (px).
KARAALI_ENET_RADII: tuple[float, ...] = (0.0, 1.0, 3.0, 5.0)


def _as_float_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
    image = image[..., :3]
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _source_image(
    rng: np.random.Generator, source: np.ndarray | TextureBank, size: tuple[int, int] | int | None
) -> np.ndarray:
    if isinstance(size, int):
        size = (size, size)
    if isinstance(source, TextureBank):
        if size is None:
            raise ValueError("size is required when drawing from a TextureBank")
        return source.photo(rng, size)[0]
    img = _as_float_rgb(source)
    if size is not None and img.shape[:2] != tuple(size):
        img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return img


def btbnet_blur_half(image: np.ndarray, times: int, position: str) -> tuple[np.ndarray, np.ndarray]:
    """Blur one half of ``image`` by the 7x7 sigma-2 Gaussian applied ``times`` times.

    Returns ``(float32 HxWx3 image, uint8 mask)`` with mask 1 = in focus (the
    sharp half) and 0 on the blurred half at ``position`` (left/right/top/bottom).
    The whole image is blurred, then only the chosen half is kept blurred.
    """
    if position not in BTBNET_POSITIONS:
        raise ValueError(f"unknown position {position!r}; valid: {', '.join(BTBNET_POSITIONS)}")
    if int(times) < 1:
        raise ValueError(f"times must be >= 1, got {times!r}")
    img = _as_float_rgb(image)
    kernel = gaussian_kernel(BTBNET_SIGMA, BTBNET_KERNEL_SIZE // 2)
    blurred = img
    for _ in range(int(times)):
        blurred = blur(blurred, kernel)
    h, w = img.shape[:2]
    mask = np.ones((h, w), np.uint8)
    region = {
        "left": (slice(None), slice(0, w // 2)),
        "right": (slice(None), slice(w // 2, None)),
        "top": (slice(0, h // 2), slice(None)),
        "bottom": (slice(h // 2, None), slice(None)),
    }[position]
    out = img.copy()
    out[region] = blurred[region]
    mask[region] = 0
    return out, mask


def btbnet_pretrain_sample(
    rng: np.random.Generator,
    source: np.ndarray | TextureBank,
    size: tuple[int, int] | int | None = (320, 320),
    times: int | None = None,
    position: str | None = None,
) -> dict[str, Any]:
    """One BTBNet pretraining sample: ``times`` (random 1..5) and ``position`` (random of 4).

    Returns ``image`` uint8 HxWx3, ``mask`` uint8 (1 = sharp half), ``times``, ``position``.
    """
    times = int(rng.choice(BTBNET_TIMES)) if times is None else int(times)
    position = BTBNET_POSITIONS[int(rng.integers(4))] if position is None else position
    img, mask = btbnet_blur_half(_source_image(rng, source, size), times, position)
    return {"image": _to_uint8(img), "mask": mask, "times": times, "position": position}


def btbnet_pretrain_variants(image: np.ndarray):
    """Yield the 20 BTBNet pretraining variants (5 blur strengths x 4 positions) of one image."""
    for times in BTBNET_TIMES:
        for position in BTBNET_POSITIONS:
            img, mask = btbnet_blur_half(image, times, position)
            yield {"image": _to_uint8(img), "mask": mask, "times": times, "position": position}


def uniform_disk_blur(image: np.ndarray, radius: float) -> np.ndarray:
    """Whole-image disk (pillbox) blur of ``radius`` px; float32 in, float32 out."""
    return blur(_as_float_rgb(image) if np.asarray(image).dtype == np.uint8 else image, disk_kernel(radius))


def karaali_bnet_sample(
    rng: np.random.Generator,
    source: np.ndarray | TextureBank,
    size: tuple[int, int] | int | None = (320, 320),
    level: int | None = None,
) -> dict[str, Any]:
    """Karaali B-NET training image: the whole image blurred by one of the 23 disk radii.

    Returns ``image`` uint8, ``radius`` (px), ``level`` (index into
    :data:`KARAALI_BNET_RADII`). Patch extraction at Canny edge points and the
    per-level balancing belong to the training pipeline, not here.
    """
    level = int(rng.integers(len(KARAALI_BNET_RADII))) if level is None else int(level)
    if not 0 <= level < len(KARAALI_BNET_RADII):
        raise ValueError(f"level must be in [0, {len(KARAALI_BNET_RADII) - 1}], got {level}")
    r = KARAALI_BNET_RADII[level]
    img = uniform_disk_blur(_source_image(rng, source, size), r)
    return {"image": _to_uint8(img), "radius": float(r), "level": level}


def karaali_enet_composite(
    foreground: np.ndarray, background: np.ndarray, alpha: np.ndarray, r_fg: float, r_bg: float
) -> np.ndarray:
    """``I = (k_fg * (a F)) + (1 - k_fg * a) (k_bg * B)`` with disk PSFs ``k`` (float32 RGB)."""
    fg, bgi = _as_float_rgb(foreground), _as_float_rgb(background)
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

    ``radii = (r_fg, r_bg)`` with ``r_fg < r_bg`` from :data:`KARAALI_ENET_RADII`
    (6 combinations) unless given. Returns ``image`` uint8, ``mask`` uint8 (the
    foreground, label >= 0.5 coverage), ``r_fg``, ``r_bg``.
    """
    if isinstance(size, int):
        size = (size, size)
    if radii is None:
        pairs = [(a, b) for i, a in enumerate(KARAALI_ENET_RADII) for b in KARAALI_ENET_RADII[i + 1 :]]
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
        "image": _to_uint8(img),
        "mask": (alpha >= 0.5).astype(np.uint8),
        "r_fg": float(r_fg),
        "r_bg": float(r_bg),
    }
