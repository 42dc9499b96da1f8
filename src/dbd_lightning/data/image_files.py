"""Image files: decoding any mode into uint8 RGB, the EXIF orientation, the value range of a file.

The primitives :mod:`.io` and :mod:`.masks` build on (kept apart so neither imports the other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..utils.errors import UserError

Polarity = Literal["white_in_focus", "white_blurred"]
POLARITIES = ("white_in_focus", "white_blurred")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_EXIF_ORIENTATION = 0x0112


class ImageReadError(UserError, RuntimeError):
    """An image or mask file could not be decoded."""


def _open(path: str | Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageReadError(f"cannot decode image file {path}: {exc}") from exc
    except Image.DecompressionBombError as exc:  # PIL's guard against images too large to hold in memory
        raise ImageReadError(f"image file {path} is too large to read ({exc}); downscale it, or leave it out") from None
    if img.getexif().get(_EXIF_ORIENTATION, 1) in (1, None):
        return img  # exif_transpose would return a full copy (192 MB for a 48 MP photo)
    return ImageOps.exif_transpose(img, in_place=False)


def _rgb_array(img: Image.Image) -> np.ndarray:
    """A writable uint8 (H, W, 3) copy of an RGB image, converted in row blocks.

    ``np.asarray(img).copy()`` holds the image three times at once (PIL's
    4-byte pixels, a bytes object, the copy); blocks of ~16 MB keep the peak at
    PIL's image plus the result.
    """
    w, h = img.size
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, (1 << 24) // max(1, 3 * w))
    for r in range(0, h, step):
        out[r:r + step] = np.asarray(img.crop((0, r, w, min(h, r + step))), dtype=np.uint8)
    return out


def _to_array_full_range(img: Image.Image) -> tuple[np.ndarray, float]:
    """Array of the image and the maximum value of its dtype range."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img, dtype=np.uint16).astype(np.float32), 65535.0
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.int64)
        top = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
        return arr.astype(np.float32), top
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        return arr, 1.0 if arr.max(initial=0) <= 1.0 else 255.0
    if img.mode == "1":
        return np.asarray(img.convert("L"), dtype=np.float32), 255.0
    return np.asarray(img), 255.0


def read_rgb(path: str | Path) -> np.ndarray:
    """Read any image file as uint8 RGB (H, W, 3)."""
    img = _open(path)
    if img.mode in ("RGB",):
        return _rgb_array(img)
    if img.mode in ("L", "P", "RGBA", "LA", "CMYK", "YCbCr", "PA", "1", "RGBX"):
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    arr, top = _to_array_full_range(img)  # 16-bit / 32-bit / float
    arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr[..., :3].copy()


def list_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` (case-insensitive suffix), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
