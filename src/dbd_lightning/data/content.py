"""Cheap checks of what image / GT files hold, run by the layout check before anything is trained.

* :func:`truncation_problem`: a JPEG must end with its EOI marker (``FF D9``), a
  PNG with its ``IEND`` chunk. Reading the last bytes of a file costs one seek, so
  every file is checked even at the ``headers`` level; only a file whose end
  looks wrong is decoded, to confirm (a JPEG with a camera trailer after EOI
  still decodes and passes).
* :func:`grey_fraction`: the fraction of a GT's pixels that are neither near-black
  nor near-white (a gradient or a photo saved as GT is thresholded at half range
  by :func:`~dbd_lightning.data.io.read_mask`, silently otherwise).
* :func:`gt_content`: one read of a GT through the loaders' own reader
  (:mod:`.masks`: a colour, transparent or collapsed mask raises
  :class:`~dbd_lightning.data.masks.MaskContentError`), its grey fraction and
  its polarity cue (:mod:`.polarity`).

Why by hand: no library offers these file-level probes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .io import Polarity
from .masks import focus_of, mask_levels
from .polarity import SIDE, FocusCue, focus_cue, grey_image

#: a GT pixel is "grey" when strictly between these (of 0..255)
GREY_LOW, GREY_HIGH = 15, 240
#: warn about a GT with more than this fraction of grey pixels (resized real GTs are anti-aliased: <~6%)
GREY_WARN_FRACTION = 0.10
_TAIL = 64 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"


def _tail(path: Path, n: int = _TAIL) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - n))
        return fh.read()


def _head(path: Path, n: int = 8) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def end_marker_missing(path: str | Path) -> bool:
    """True when a JPEG does not end with EOI / a PNG has no ``IEND`` chunk in its last 64 KiB.

    Other formats: False (only their header is probed). Trailing zero bytes after
    a JPEG's EOI (some writers pad) are accepted.
    """
    path = Path(path)
    head = _head(path)
    if head[:2] == b"\xff\xd8":
        return not _tail(path, 4096).rstrip(b"\x00").endswith(b"\xff\xd9")
    if head == _PNG_SIGNATURE:
        return _PNG_IEND not in _tail(path)
    return False


def truncation_problem(path: str | Path) -> str | None:
    """``None`` for a complete file, else why it cannot be decoded (checked by decoding it)."""
    if not end_marker_missing(path):
        return None
    kind = "JPEG EOI marker" if _head(Path(path), 2) == b"\xff\xd8" else "PNG IEND chunk"
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as exc:  # noqa: BLE001 -- any decoder failure means the file is unusable
        return f"the file is truncated (it ends without its {kind} and does not decode: {exc})"
    return None


def _grey_of(levels: np.ndarray, top: float) -> float:
    if not levels.size:
        return 0.0
    scaled = levels * (255.0 / top) if top != 255.0 else levels
    return float(((scaled > GREY_LOW) & (scaled < GREY_HIGH)).mean())


def grey_fraction(path: str | Path) -> float:
    """Fraction of a mask file's pixels that are neither near-black nor near-white (of the 0..255 range)."""
    return _grey_of(*mask_levels(path))


def gt_content(image_path: str | Path, gt_path: str | Path, polarity: Polarity | None = "white_in_focus",
               side: int = SIDE) -> tuple[float, FocusCue | None]:
    """``(grey fraction of the GT, polarity cue)`` reading each file once (cue ``None``: no polarity given).

    The GT is read as the loaders read it, so a GT they would refuse raises
    :class:`~dbd_lightning.data.masks.MaskContentError` here too.
    """
    levels, top = mask_levels(gt_path)
    grey = _grey_of(levels, top)
    focus = focus_of(levels, top, gt_path, polarity or "white_in_focus")
    if polarity is None:
        return grey, None
    return grey, focus_cue(grey_image(image_path, side), focus)


def sample_indices(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``k >= n``)."""
    if k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})
