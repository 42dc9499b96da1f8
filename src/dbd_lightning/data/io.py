"""Reading images and masks of any mode into the toolkit's conventions.

Images -> uint8 RGB (H, W, 3) whatever the file holds (grayscale, palette,
RGBA, 16-bit); EXIF orientation is applied. Masks -> uint8 {0, 1} (H, W),
binarised at half the value range of the file's dtype, with the dataset's
on-disk polarity converted to in-focus = 1; colour, transparent or collapsed
masks are refused by name (:mod:`.masks`).
"""

from __future__ import annotations

from .image_files import (  # noqa: F401  (the readers' public home stays this module)
    _EXIF_ORIENTATION,
    IMAGE_SUFFIXES,
    POLARITIES,
    ImageReadError,
    Polarity,
    _open,
    _rgb_array,
    _to_array_full_range,
    list_images,
    read_rgb,
)
from .masks import read_mask  # noqa: F401  (colour / transparent / collapsed masks refused by name)
