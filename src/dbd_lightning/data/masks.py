"""One reader for two-class maps (GT masks, precomputed edge maps) that names the files it cannot read.

A GT mask is a grey image read at half the value range of its dtype
(:func:`read_mask`); an edge map is nonzero = edge (:func:`read_edges`). Files
that would otherwise be read silently wrong raise :class:`MaskContentError`
naming the file and the fix:

* a colour mask: a GT drawn red = in focus on black has luminance 76 < 128, so
  every pixel would read "blurred". Grey files stored as RGB (R = G = B up to
  compression noise) are grey. An edge map may be coloured (the Karaali
  authors' visualisations): nonzero in any channel is an edge, as documented;
* transparency: the file does not say what a transparent pixel is;
* a reading that leaves one class empty while the file holds a second level on
  a real part of its pixels (a 0/1 label map read at 128 of 255, 0/255 values
  in a 16-bit file, edges drawn on a grey background). A file of one level (a
  genuinely all-white or all-black mask, an edge map without edges) is legal;
* a JPEG edge map: its compression noise around every edge would be nonzero.

Why by hand: PIL's ``convert("L")`` silently turns colour into luminance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .image_files import POLARITIES, ImageReadError, Polarity, _open, _to_array_full_range

__all__ = ["MaskContentError", "read_mask", "read_edges", "mask_levels", "focus_of"]

#: a pixel is coloured when its channels differ by more than this (of 255); JPEG keeps a grey file within ~4
COLOUR_SPREAD = 24
#: a file is colour when more than this fraction of its pixels is coloured
COLOUR_FRACTION = 0.001
#: a one-class reading is refused when more than this fraction of pixels holds another level than the commonest
SECOND_LEVEL_FRACTION = 0.01
_GREY_MODES = ("1", "L", "I", "F", "I;16", "I;16B", "I;16L", "I;16N")


class MaskContentError(ImageReadError, ValueError):
    """A GT mask or edge map whose pixels have no single reading (colour, transparency, a collapsed class)."""


def _channels(img: Image.Image, path: Path, what: str) -> tuple[np.ndarray, float, bool]:
    """``(values, top, has_colour_channels)``: (H, W) grey or (H, W, 3) RGB values, transparency refused."""
    if img.mode in _GREY_MODES:
        arr, top = _to_array_full_range(img)
        return np.asarray(arr), top, False
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode not in ("RGB", "RGBA", "LA", "PA"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    if img.mode == "PA":
        img = img.convert("RGBA")
    arr = np.asarray(img)
    if img.mode in ("RGBA", "LA"):
        alpha = arr[..., -1]
        if alpha.min(initial=255) < 255:
            share = float(np.count_nonzero(alpha < 255)) / alpha.size
            raise MaskContentError(
                f"{path}: the {what} has transparent pixels ({share:.1%} of them, mode {img.mode}), and a "
                "transparent pixel has no class: save it without an alpha channel (flattened onto black)")
        arr = arr[..., :-1]
    if img.mode == "LA":
        return arr[..., 0], 255.0, False
    return arr, 255.0, True


def _colour_problem(rgb: np.ndarray) -> str | None:
    """``None`` for a grey RGB array, else a description of its colours."""
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    coloured = spread > COLOUR_SPREAD
    share = float(np.count_nonzero(coloured)) / max(1, coloured.size)
    if share <= COLOUR_FRACTION:
        return None
    values, counts = np.unique(rgb[coloured][:100_000], axis=0, return_counts=True)
    common = ", ".join(f"RGB {tuple(int(c) for c in values[i])}" for i in np.argsort(-counts)[:3])
    return f"{share:.1%} of its pixels coloured, commonest {common}"


def mask_levels(path: str | Path, what: str = "GT mask") -> tuple[np.ndarray, float]:
    """``(grey levels (H, W), top of the dtype range)`` of a GT mask; a colour or transparent file raises.

    Grey files stored as RGB give their first channel (R = G = B within :data:`COLOUR_SPREAD`).
    """
    path = Path(path)
    values, top, rgb = _channels(_open(path), path, what)
    if rgb:
        problem = _colour_problem(values)
        if problem:
            raise MaskContentError(
                f"{path}: a colour {what} ({problem}); a GT mask must be grey, since its grey level decides the "
                "class and a colour's luminance means nothing (pure red reads 76 of 255, below half range). "
                "Save it as a grey image with the two classes black and white (data.polarity=white_in_focus or "
                "white_blurred says which is in focus)")
        values = values[..., 0]
    return values, top


def _second_level_share(values: np.ndarray) -> tuple[float, float, float]:
    """``(share of pixels not at the commonest level, commonest level, the most frequent other level)``."""
    low, high = values.min(), values.max()
    if low == high:  # a one-level file (all white, all black): no sort needed
        return 0.0, float(low), float(low)
    levels, counts = np.unique(values, return_counts=True)
    order = np.argsort(-counts)
    other = float(levels[order[1]]) if len(levels) > 1 else float(levels[order[0]])
    return 1.0 - float(counts[order[0]]) / values.size, float(levels[order[0]]), other


def _level(v: float) -> str:
    return f"{v:g}"


def focus_of(values: np.ndarray, top: float, path: str | Path, polarity: Polarity = "white_in_focus") -> np.ndarray:
    """uint8 {0, 1} in-focus mask from grey ``values``: white = ``values >= top / 2``, then ``polarity``.

    Raises :class:`MaskContentError` when every pixel lands in one class although more than
    :data:`SECOND_LEVEL_FRACTION` of them hold a second level (see the module docstring).
    """
    if polarity not in POLARITIES:
        raise ValueError(f"unknown mask polarity {polarity!r}; expected one of {POLARITIES}")
    white = values >= top / 2.0
    n_white = int(np.count_nonzero(white))
    if n_white in (0, white.size) and white.size:
        share, common, other = _second_level_share(values)
        if share > SECOND_LEVEL_FRACTION:
            side = "white (at or above" if n_white else "black (below"
            raise MaskContentError(
                f"{path}: every pixel of this GT mask reads {side} half range, {top / 2:g} of {top:g}), yet "
                f"{share:.1%} of them hold level {_level(other)} (the rest mostly {_level(common)}): two classes "
                "that the threshold merges (a 0/1 label map? 8-bit values in a 16-bit file?). Rescale it so "
                f"that the classes are 0 and {top:g} (e.g. a 0/1 map times {top:g})")
    focus = white if polarity == "white_in_focus" else ~white
    return focus.astype(np.uint8)


def read_mask(path: str | Path, polarity: Polarity = "white_in_focus") -> np.ndarray:
    """Read a GT mask as uint8 {0, 1} (H, W) with in-focus = 1 (:func:`mask_levels` + :func:`focus_of`)."""
    values, top = mask_levels(path)
    return focus_of(values, top, path, polarity)


def read_edges(path: str | Path) -> np.ndarray:
    """A precomputed edge map as bool (H, W): nonzero in any channel = edge (colour maps read as drawn).

    Raises :class:`MaskContentError` for a JPEG file, transparency, or a map whose every pixel is
    nonzero although more than :data:`SECOND_LEVEL_FRACTION` of them hold a second value (edges
    drawn on a non-black background).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        if fh.read(2) == b"\xff\xd8":
            raise MaskContentError(
                f"{path}: a JPEG edge map; edge maps are read as nonzero = edge and JPEG's compression noise "
                "around every edge would be nonzero too: save it losslessly (PNG, BMP or TIFF), edges "
                "nonzero on black")
    values, _, rgb = _channels(_open(path), path, "edge map")
    flat = values.reshape(values.shape[0], values.shape[1], -1)
    edges = np.any(flat != 0, axis=2)
    if edges.size and edges.all():
        keys = flat[..., 0] if flat.shape[2] == 1 else flat.astype(np.int64) @ np.array([1 << 32, 1 << 16, 1])
        share, _, _ = _second_level_share(keys)
        if share > SECOND_LEVEL_FRACTION:
            raise MaskContentError(
                f"{path}: no pixel of this edge map is zero (black), yet it holds several "
                f"{'colours' if rgb else 'levels'} ({share:.1%} of its pixels differ from the commonest): edges "
                "drawn on a non-black background? "
                "Edge maps are read as nonzero = edge: save the edges nonzero on a black (0) background")
    return edges
