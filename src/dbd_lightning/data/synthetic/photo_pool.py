"""Photographs that install offline, their train/val/test split, and their cached segmentations.

Sources (no network): scikit-image's bundled sample images, scikit-learn's
``load_sample_images`` (``china.jpg``, ``flower.jpg``), matplotlib's sample data
(``grace_hopper.jpg``), plus any folder of the user's own photos (``source_dir``).

The split is fixed per photo, so train, validation and test scenes never share a
photograph: bundled photos by the table :data:`BUNDLED_SPLITS`; a user's photo by a
hash of its file name (1 in 10 to validation, 1 in 10 to test).

Each photo is segmented once per process (scikit-image's Felzenszwalb graph
segmentation, at the photo's own resolution), and each segment gets a sharpness
score (mean Laplacian energy): the photographic renderer cuts its in-focus
subjects along these segments' contours, from the photo's sharpest parts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from .textures import _load_user_photo, _to_rgb_float, list_source_dir

__all__ = ["BUNDLED_SPLITS", "SPLITS", "SegmentedPhoto", "photo_ids", "load_photo", "segmented_photo"]

SPLITS: tuple[str, ...] = ("train", "val", "test", "all")

#: Bundled photo id -> split. Colour and grey, natural scenes and textures.
BUNDLED_SPLITS: dict[str, str] = {
    "skimage:astronaut": "train",
    "skimage:camera": "train",
    "skimage:brick": "train",
    "skimage:grass": "train",
    "skimage:gravel": "train",
    "skimage:moon": "train",
    "skimage:chelsea": "train",
    "skimage:coffee": "train",
    "skimage:immunohistochemistry": "train",
    "skimage:page": "train",
    "sklearn:china.jpg": "train",
    "matplotlib:grace_hopper.jpg": "train",
    "skimage:coins": "val",
    "skimage:text": "val",
    "skimage:rocket": "test",
    "sklearn:flower.jpg": "test",
}


def _load_bundled(photo_id: str) -> np.ndarray | None:
    kind, name = photo_id.split(":", 1)
    try:
        if kind == "skimage":
            import skimage.data

            return _to_rgb_float(getattr(skimage.data, name)())
        if kind == "sklearn":
            from sklearn.datasets import load_sample_image

            return _to_rgb_float(load_sample_image(name))
        if kind == "matplotlib":
            import matplotlib.cbook

            with matplotlib.cbook.get_sample_data(name) as f:
                buf = np.frombuffer(f.read(), np.uint8)
            return _to_rgb_float(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    except Exception:  # not installed / needs a download: leave it out
        return None
    raise ValueError(f"unknown photo source {photo_id!r}")


@cache
def _available_bundled() -> tuple[str, ...]:
    return tuple(p for p in BUNDLED_SPLITS if _load_bundled(p) is not None)


def _user_split(path: str) -> str:
    h = int(hashlib.sha1(path.rsplit("/", 1)[-1].encode()).hexdigest(), 16) % 10
    return "test" if h == 0 else "val" if h == 1 else "train"


def photo_ids(split: str = "all", source_dir: str | None = None, include_bundled: bool = True) -> tuple[str, ...]:
    """Photo ids of ``split`` (``train``/``val``/``test``/``all``): bundled ids and user file paths."""
    if split not in SPLITS:
        raise ValueError(f"photo split must be one of {SPLITS}, got {split!r}")
    ids: list[str] = []
    if include_bundled or source_dir is None:
        ids += [p for p in _available_bundled() if split == "all" or BUNDLED_SPLITS[p] == split]
    if source_dir is not None:
        ids += [p for p in list_source_dir(source_dir) if split == "all" or _user_split(p) == split]
    if not ids:
        raise FileNotFoundError(
            f"no photographs for split {split!r} (source_dir={source_dir!r}, include_bundled={include_bundled})"
        )
    return tuple(ids)


@cache
def load_photo(photo_id: str) -> np.ndarray:
    """Read-only float32 RGB in [0, 1] (cached per process)."""
    if photo_id.split(":", 1)[0] in ("skimage", "sklearn", "matplotlib"):
        img = _load_bundled(photo_id)
        if img is None:
            raise FileNotFoundError(f"bundled photo {photo_id!r} is not available offline")
        return img
    return _load_user_photo(photo_id)


@dataclass(frozen=True)
class SegmentedPhoto:
    """A photo, its segment labels (int32, 0..n-1) and each segment's sharpness and area."""

    image: np.ndarray
    labels: np.ndarray
    sharpness: np.ndarray
    area: np.ndarray


@cache
def segmented_photo(photo_id: str, max_side: int = 640) -> SegmentedPhoto:
    """Felzenszwalb segmentation of a photo (downscaled to ``max_side`` if larger), cached per process."""
    from skimage.segmentation import felzenszwalb

    img = load_photo(photo_id)
    h, w = img.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        img.setflags(write=False)
    h, w = img.shape[:2]
    labels = felzenszwalb(img, scale=300, sigma=0.8, min_size=max(64, h * w // 800)).astype(np.int32)
    n = int(labels.max()) + 1
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    energy = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))
    area = np.bincount(labels.ravel(), minlength=n).astype(np.float32)
    sharp = np.bincount(labels.ravel(), weights=energy.ravel(), minlength=n).astype(np.float32) / np.maximum(area, 1)
    for a in (labels, sharp, area):
        a.setflags(write=False)
    return SegmentedPhoto(img, labels, sharp, area)
