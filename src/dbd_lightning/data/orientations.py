"""BTBNet's x16 training-set enlargement (Zhao et al., CVPR 2018, Sec. 4.1, after HED).

"the training set is enlarged to 9664 images by horizontal flipping at each orientation
and rotating to 8 different orientations": 604 CUHK images x 8 rotations (multiples of
45 degrees) x 2 (with / without horizontal flip). Written by hand because it is a
deterministic enlargement of the dataset (length x16), not a random transform.

Rotations by 90/180/270 degrees are exact (``np.rot90``). The diagonal ones follow HED:
rotate about the centre and keep the largest axis-aligned rectangle inside the rotated
image (``crop='inscribed'``), so no padded pixels enter image or mask; ``crop='none'``
keeps the canvas and fills the corners by reflection instead.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

__all__ = ["Orientations16", "inscribed_size", "orient"]

N_ORIENTATIONS = 16
_CROPS = ("inscribed", "none")


def inscribed_size(h: int, w: int, angle_deg: float) -> tuple[int, int]:
    """(H, W) of the largest axis-aligned rectangle inside an ``h x w`` image rotated by ``angle_deg``."""
    a = math.radians(angle_deg) % math.pi
    if a > math.pi / 2:
        a = math.pi - a
    sin, cos = abs(math.sin(a)), abs(math.cos(a))
    if sin < 1e-9:
        return h, w
    long_side, short_side = max(w, h), min(w, h)
    if short_side <= 2.0 * sin * cos * long_side or abs(sin - cos) < 1e-10:
        x = 0.5 * short_side
        wr, hr = (x / sin, x / cos) if w >= h else (x / cos, x / sin)
    else:
        cos2 = cos * cos - sin * sin
        wr, hr = (w * cos - h * sin) / cos2, (h * cos - w * sin) / cos2
    return max(1, int(math.floor(hr))), max(1, int(math.floor(wr)))


def _rotate(arr: np.ndarray, angle: float, crop: str, interp: int) -> np.ndarray:
    h, w = arr.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    out = cv2.warpAffine(arr, m, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT_101)
    if crop == "inscribed":
        ch, cw = inscribed_size(h, w, angle)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        out = out[y0:y0 + ch, x0:x0 + cw]
    return np.ascontiguousarray(out)


def orient(arr: np.ndarray, k: int, crop: str = "inscribed", mask: bool = False) -> np.ndarray:
    """Orientation ``k`` in 0..15: rotation ``(k % 8) x 45`` degrees (counter-clockwise), then a
    horizontal flip when ``k >= 8``. ``mask=True``: nearest-neighbour for the diagonal angles."""
    if not 0 <= int(k) < N_ORIENTATIONS:
        raise ValueError(f"orientation index must be in 0..15, got {k}")
    if crop not in _CROPS:
        raise ValueError(f"crop must be one of {_CROPS}, got {crop!r}")
    r, flip = int(k) % 8, int(k) >= 8
    if r % 2 == 0:
        out = np.ascontiguousarray(np.rot90(arr, r // 2))
    else:
        out = _rotate(arr, 45.0 * r, crop, cv2.INTER_NEAREST if mask else cv2.INTER_LINEAR)
    return np.ascontiguousarray(out[:, ::-1]) if flip else out


class Orientations16(Dataset):
    """Wrap a raw-sample dataset: index ``16 i + k`` = sample ``i`` in orientation ``k`` (:func:`orient`).

    ``enabled=False`` passes the base through unchanged (length x1), so configs can switch it.

    ``image`` and ``mask`` (and ``depth`` / ``radius`` / ``dof_edge`` if present) are
    transformed together; ``name`` gets a ``_o<k>`` suffix. Use it on the training set only.
    """

    PER_PIXEL = ("mask", "depth", "radius", "dof_edge")

    def __init__(self, base: Dataset, crop: str = "inscribed", enabled: bool = True) -> None:
        if crop not in _CROPS:
            raise ValueError(f"Orientations16: crop must be one of {_CROPS}, got {crop!r}")
        self.base, self.crop, self.n = base, crop, N_ORIENTATIONS if enabled else 1

    def __getattr__(self, name: str):
        # layout checks (layout_issues / describe) and other dataset attributes come from the base
        base = self.__dict__.get("base")
        if base is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(base, name)

    def __len__(self) -> int:
        return self.n * len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        i, k = divmod(index, self.n)
        raw = dict(self.base[i])
        if self.n == 1:
            return raw
        raw["image"] = orient(raw["image"], k, self.crop)
        for key in self.PER_PIXEL:
            if key in raw and raw[key] is not None:
                raw[key] = orient(np.asarray(raw[key]), k, self.crop, mask=True)
        raw["name"] = f"{raw.get('name', i)}_o{k}"
        return raw
