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
  its polarity cue.
* :func:`focus_contrast`: the polarity cue. In-focus regions carry more
  high-frequency energy than defocused ones (a defocus PSF is a low-pass filter),
  so the mean absolute Laplacian of the image inside the GT's in-focus region
  should exceed the one inside its blurred region. Returned as a log ratio; a
  dataset whose in-focus side is the smoother one in most images has its GT
  polarity inverted (``data.polarity``).

Why by hand: no library offers these file-level probes; the Laplacian is OpenCV's.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from .io import Polarity, read_mask
from .masks import focus_of, mask_levels

#: a GT pixel is "grey" when strictly between these (of 0..255)
GREY_LOW, GREY_HIGH = 15, 240
#: warn about a GT with more than this fraction of grey pixels (resized real GTs are anti-aliased: <~6%)
GREY_WARN_FRACTION = 0.10
#: longest side at which the polarity cue is computed (JPEGs are decoded at a reduced DCT scale)
POLARITY_SIDE = 640
#: an image votes on polarity only when its in/out Laplacian ratio is beyond this factor either way
POLARITY_DECISIVE = 1.25
#: each region must cover at least this fraction of the (eroded) image to vote
POLARITY_MIN_AREA = 0.03
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


def _oriented(img: Image.Image) -> Image.Image:
    """EXIF orientation applied, as the loaders do (no copy when there is none)."""
    return ImageOps.exif_transpose(img) if img.getexif().get(0x0112, 1) not in (1, None) else img


def _grey_of(levels: np.ndarray, top: float) -> float:
    if not levels.size:
        return 0.0
    scaled = levels * (255.0 / top) if top != 255.0 else levels
    return float(((scaled > GREY_LOW) & (scaled < GREY_HIGH)).mean())


def grey_fraction(path: str | Path) -> float:
    """Fraction of a mask file's pixels that are neither near-black nor near-white (of the 0..255 range)."""
    return _grey_of(*mask_levels(path))


def _grey_image(path: Path, side: int) -> np.ndarray:
    """Grey float32 image, reduced so that its long side is about ``side`` (JPEG: reduced DCT decoding)."""
    with Image.open(path) as img:
        if img.format == "JPEG" and max(img.size) > 2 * side:
            scale = side / max(img.size)
            img.draft("L", (max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale))))
        img = _oriented(img).convert("L")
        arr = np.asarray(img, np.float32)
    h, w = arr.shape
    if max(h, w) > 1.5 * side:
        f = side / max(h, w)
        arr = cv2.resize(arr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return arr


def gt_content(image_path: str | Path, gt_path: str | Path, polarity: Polarity | None = "white_in_focus",
               side: int = POLARITY_SIDE) -> tuple[float, float | None]:
    """``(grey fraction of the GT, focus contrast)`` reading each file once (contrast ``None``: no polarity).

    The GT is read as the loaders read it, so a GT they would refuse raises
    :class:`~dbd_lightning.data.masks.MaskContentError` here too.
    """
    levels, top = mask_levels(gt_path)
    grey = _grey_of(levels, top)
    focus = focus_of(levels, top, gt_path, polarity or "white_in_focus")
    if polarity is None:
        return grey, None
    return grey, _contrast(_grey_image(Path(image_path), side), focus)


def focus_contrast(image_path: str | Path, gt_path: str | Path, polarity: Polarity = "white_in_focus",
                   side: int = POLARITY_SIDE) -> float | None:
    """``log(mean |Laplacian| inside the GT's in-focus region / inside its blurred region)``.

    Positive = the GT's in-focus side is the sharper one (consistent); negative =
    the GT calls the smoother side in focus. ``None`` when one region is (nearly)
    empty after eroding both by 3 px at the working scale (object borders carry
    edges of both sides) or the image has no texture at all.
    """
    return _contrast(_grey_image(Path(image_path), side), read_mask(gt_path, polarity))


def _contrast(grey: np.ndarray, focus: np.ndarray) -> float | None:
    h, w = grey.shape
    if focus.shape != (h, w):
        focus = cv2.resize(focus, (w, h), interpolation=cv2.INTER_NEAREST)
    lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))
    kernel = np.ones((7, 7), np.uint8)
    inside = cv2.erode(focus, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    outside = cv2.erode(1 - focus, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    # the Laplacian's own 1-px image border is not image content
    inside[[0, -1], :] = inside[:, [0, -1]] = False
    outside[[0, -1], :] = outside[:, [0, -1]] = False
    if min(inside.mean(), outside.mean()) < POLARITY_MIN_AREA:
        return None
    e_in, e_out = float(lap[inside].mean()), float(lap[outside].mean())
    if e_in <= 1e-3 and e_out <= 1e-3:
        return None
    return float(np.log((e_in + 1e-3) / (e_out + 1e-3)))


def polarity_verdict(contrasts: list[float | None]) -> tuple[int, int]:
    """``(inverted, decisive)``: images whose in-focus side is clearly smoother, among those that are clear."""
    margin = float(np.log(POLARITY_DECISIVE))
    decisive = [c for c in contrasts if c is not None and abs(c) > margin]
    return sum(c < 0 for c in decisive), len(decisive)


def sample_indices(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all of them when ``k >= n``)."""
    if k >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})
