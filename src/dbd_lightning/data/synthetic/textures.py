"""Sharp (all-in-focus) texture sources for the synthetic renderer.

Every texture is a float32 ``HxWx3`` RGB array in ``[0, 1]`` and all randomness
comes from the ``numpy.random.Generator`` passed in. Sources of sharp texture:

* ``photo``: crops of photographs bundled inside scikit-image (only files that
  ship with the wheel and load without network, see :data:`BUNDLED_PHOTOS`),
  or of a user folder of all-in-focus photos (``source_dir``). Crops are at
  least as large as the output where the photo allows it, so they are mostly
  *down*-scaled (no interpolation blur); random flips; grey photos get a tint.
* ``noise``: multi-scale value noise (octaves of uniform noise on grids with
  cells of 32 px down to 1 px, bicubic upsampling, amplitude ``∝ cell^beta``)
  mapped between two random colours.
* ``stripes``: rotated sinusoidal or square-wave stripes of period 3-32 px.
* ``checkers``: rotated checkerboards of cell 3-32 px.
* ``homogeneous``: a flat colour or a gentle linear shading (amplitude <= 0.12)
  - the textureless in-focus regions every DBD paper calls its failure case.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "BUNDLED_PHOTOS",
    "TEXTURE_KINDS",
    "IMAGE_SUFFIXES",
    "TextureBank",
    "load_bundled_photo",
    "available_bundled_photos",
    "list_source_dir",
    "random_crop",
    "noise_texture",
    "stripes_texture",
    "checkers_texture",
    "homogeneous_texture",
    "pixel_grid",
]

#: scikit-image sample images that ship inside the package (no ``pooch`` download)
#: and are sharp; blurred/motion samples (clock, cell, text, chelsea, coffee,
#: retina) and near-empty ones (hubble_deep_field) are left out on purpose.
BUNDLED_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "rocket",
    "immunohistochemistry",
    "camera",
    "brick",
    "grass",
    "gravel",
    "moon",
    "coins",
    "page",
)
TEXTURE_KINDS: tuple[str, ...] = ("photo", "noise", "stripes", "checkers", "homogeneous")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _to_rgb_float(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    scale = 255.0 if img.dtype == np.uint8 else (65535.0 if img.dtype == np.uint16 else 1.0)
    out = img.astype(np.float32) / np.float32(scale)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    out.setflags(write=False)
    return out


@cache
def load_bundled_photo(name: str) -> np.ndarray:
    """Load scikit-image sample ``name`` as read-only float32 RGB in [0, 1] (cached per process)."""
    import skimage.data  # local import keeps ``import dbd_lightning.data.synthetic`` light

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ValueError(f"skimage.data has no sample image {name!r}")
    return _to_rgb_float(loader())


@lru_cache(maxsize=1)
def available_bundled_photos() -> tuple[str, ...]:
    """Names from :data:`BUNDLED_PHOTOS` that load offline on this installation."""
    ok = []
    for name in BUNDLED_PHOTOS:
        try:
            load_bundled_photo(name)
        except Exception:  # missing file / needs a download: skip it
            continue
        ok.append(name)
    return tuple(ok)


@lru_cache(maxsize=16)
def list_source_dir(source_dir: str) -> tuple[str, ...]:
    """Sorted image files (by :data:`IMAGE_SUFFIXES`) under ``source_dir`` (recursive)."""
    root = Path(source_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"source_dir {str(root)!r} is not a directory")
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) found under source_dir {str(root)!r}"
        )
    return tuple(files)


@lru_cache(maxsize=64)
def _load_user_photo(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f"cannot read image {path!r}")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return _to_rgb_float(img)


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=3).astype(np.float32)


@lru_cache(maxsize=8)
def pixel_grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Read-only float32 ``(ys, xs)`` pixel coordinate grids of ``size`` (cached)."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def random_crop(rng: np.random.Generator, photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Random crop of ``photo`` with the aspect of ``size``, resized to ``size``, random flips.

    The crop side is drawn between the output size (when the photo is large
    enough, so the crop is only ever reduced) and the largest crop that fits.
    """
    h, w = size
    ph, pw = photo.shape[:2]
    max_scale = min(ph / h, pw / w)  # crop = scale * output
    min_scale = min(1.0, max_scale)
    scale = (
        math.exp(_uniform(rng, math.log(min_scale), math.log(max_scale)))
        if max_scale > min_scale
        else max_scale
    )
    ch, cw = max(1, min(ph, round(h * scale))), max(1, min(pw, round(w * scale)))
    y0 = int(rng.integers(0, ph - ch + 1))
    x0 = int(rng.integers(0, pw - cw + 1))
    crop = photo[y0 : y0 + ch, x0 : x0 + cw]
    if (ch, cw) == (h, w):
        out = crop.copy()  # never hand out a view of the cached (read-only) photo
    elif ch >= h:
        out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)  # convex weights: stays in [0, 1]
    else:
        out = np.clip(cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.2:
        out = out[::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


def _tint_if_grey(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    if img.shape[2] == 3 and np.array_equal(img[::16, ::16, 0], img[::16, ::16, 1]):
        tint = rng.uniform(0.65, 1.0, size=3)
        img = cv2.multiply(img, (*tint.tolist(), 0.0))
    return img


def _colourise(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Map a scalar field ``t`` in [0, 1] between two random colours: ``c0 + t (c1 - c0)``."""
    c0, c1 = _random_colour(rng), _random_colour(rng)
    if float(np.abs(c1 - c0).sum()) < 0.6:  # keep enough contrast for a visible texture
        c1 = 1.0 - c0
    return _affine_rgb(t, c1 - c0, c0)


def _affine_rgb(t: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``offset + t * scale`` per RGB channel for a scalar field ``t`` (OpenCV, float32 HxWx3)."""
    t3 = cv2.cvtColor(np.ascontiguousarray(t, dtype=np.float32), cv2.COLOR_GRAY2RGB)
    out = cv2.multiply(t3, (*np.asarray(scale, np.float64).tolist(), 0.0))
    return cv2.add(out, (*np.asarray(offset, np.float64).tolist(), 0.0))


def noise_texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Multi-scale value noise: octaves on grids with cells 2^k px (k = 5..0) and weights ``cell^beta``."""
    h, w = size
    beta = _uniform(rng, 0.0, 0.9)
    acc = np.zeros((h, w), np.float32)
    total = 0.0
    for k in range(5, -1, -1):
        cell = 2**k
        gh, gw = max(2, -(-h // cell) + 1), max(2, -(-w // cell) + 1)
        amp = float(cell**beta)
        g = rng.random((gh, gw), dtype=np.float32)
        if cell == 1:
            up = g[:h, :w]
        else:
            up = cv2.resize(g, (gw * cell, gh * cell), interpolation=cv2.INTER_CUBIC)[:h, :w]
        acc += amp * up
        total += amp
    acc /= np.float32(total)
    lo, hi = np.percentile(acc[:: max(1, h // 32), :: max(1, w // 32)], (2, 98))
    t = np.clip((acc - lo) / max(hi - lo, 1e-3), 0.0, 1.0)
    return _colourise(rng, t)


def _rotated_coords(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = pixel_grid(tuple(size))
    theta = _uniform(rng, 0.0, math.pi)
    c, s = np.float32(math.cos(theta)), np.float32(math.sin(theta))
    ox, oy = np.float32(_uniform(rng, 0, 64)), np.float32(_uniform(rng, 0, 64))
    u = c * xs + s * ys + ox
    v = -s * xs + c * ys + oy
    return u, v


def stripes_texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Rotated stripes of period 3-32 px, sinusoidal or square-wave, between two colours."""
    u, _ = _rotated_coords(rng, size)
    period = math.exp(_uniform(rng, math.log(3.0), math.log(32.0)))
    wave = np.sin(u * np.float32(2.0 * math.pi / period))
    t = (wave > 0).astype(np.float32) if rng.random() < 0.5 else 0.5 + 0.5 * wave
    return _colourise(rng, t)


def checkers_texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Rotated checkerboard with square cells of 3-32 px between two colours."""
    u, v = _rotated_coords(rng, size)
    cell = np.float32(math.exp(_uniform(rng, math.log(3.0), math.log(32.0))))
    t = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    return _colourise(rng, t)


def homogeneous_texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Flat colour (40 %) or a gentle linear shading of amplitude <= 0.12 across the region."""
    h, w = size
    base = rng.uniform(0.07, 0.93, size=3)
    if rng.random() < 0.4:
        return np.broadcast_to(base.astype(np.float32), (h, w, 3)).copy()
    u, _ = _rotated_coords(rng, size)
    umin = float(u.min())
    span = max(float(u.max()) - umin, 1.0)
    amp = _uniform(rng, 0.03, 0.12)
    ramp = (u - np.float32(umin)) * np.float32(1.0 / span)  # [0, 1]
    # base + amp (ramp - 1/2): stays inside [0.01, 0.99]
    return _affine_rgb(ramp, np.full(3, amp), base - 0.5 * amp)


class TextureBank:
    """Draws sharp textures of a given size from the configured sources.

    Args:
        weights: relative weights of ``photo``, ``noise``, ``stripes``, ``checkers``.
        homogeneous_prob: probability that a draw is a homogeneous region instead.
        source_dir: optional folder of all-in-focus photos (searched recursively).
        include_bundled_photos: keep the scikit-image photos in the pool when
            ``source_dir`` is given (without ``source_dir`` they are always used).
        bundled: names of scikit-image samples to use (those that fail to load
            offline are skipped).

    Photos are loaded lazily and cached per process, so the bank is cheap to
    pickle into DataLoader workers.
    """

    def __init__(
        self,
        weights: dict[str, float] | None = None,
        homogeneous_prob: float = 0.15,
        source_dir: str | os.PathLike | None = None,
        include_bundled_photos: bool = True,
        bundled: Sequence[str] = BUNDLED_PHOTOS,
    ) -> None:
        weights = dict(weights or {"photo": 0.55, "noise": 0.2, "stripes": 0.1, "checkers": 0.15})
        unknown = set(weights) - {"photo", "noise", "stripes", "checkers"}
        if unknown:
            raise ValueError(
                f"unknown texture kind(s) {sorted(unknown)}; valid: photo, noise, stripes, checkers"
                " (homogeneous has its own probability)"
            )
        if any(v < 0 for v in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"texture weights must be >= 0 with a positive sum, got {weights}")
        if not 0.0 <= homogeneous_prob <= 1.0:
            raise ValueError(f"homogeneous_prob must be in [0, 1], got {homogeneous_prob!r}")
        self.kinds = tuple(weights)
        total = float(sum(weights.values()))
        self.probs = np.array([weights[k] / total for k in self.kinds])
        self.homogeneous_prob = float(homogeneous_prob)
        self.source_dir = None if source_dir is None else str(source_dir)
        self.include_bundled_photos = bool(include_bundled_photos)
        self.bundled = tuple(bundled)
        if self.source_dir is not None:
            list_source_dir(self.source_dir)  # fail early with a clear message

    def photo_ids(self) -> tuple[str, ...]:
        """Identifiers of the photos in the pool: ``skimage:<name>`` and file paths."""
        ids: list[str] = []
        if self.source_dir is None or self.include_bundled_photos:
            avail = available_bundled_photos()
            ids += [f"skimage:{n}" for n in self.bundled if n in avail]
        if self.source_dir is not None:
            ids += list(list_source_dir(self.source_dir))
        if not ids and "photo" in self.kinds and self.probs[self.kinds.index("photo")] > 0:
            raise RuntimeError("no photo source available (no bundled skimage photo loads and no source_dir)")
        return tuple(ids)

    @staticmethod
    def load_photo(photo_id: str) -> np.ndarray:
        """Float32 RGB of a photo id from :meth:`photo_ids`."""
        if photo_id.startswith("skimage:"):
            return load_bundled_photo(photo_id.split(":", 1)[1])
        return _load_user_photo(photo_id)

    def photo(
        self, rng: np.random.Generator, size: tuple[int, int], exclude: Sequence[str] = ()
    ) -> tuple[np.ndarray, str]:
        """A random photo crop of ``size``, avoiding photo ids in ``exclude`` when possible."""
        ids = self.photo_ids()
        pool = [i for i in ids if i not in set(exclude)] or list(ids)
        pid = pool[int(rng.integers(len(pool)))]
        img = random_crop(rng, self.load_photo(pid), size)
        return _tint_if_grey(rng, img), pid

    def sample(
        self,
        rng: np.random.Generator,
        size: tuple[int, int],
        exclude: Sequence[str] = (),
        kind: str | None = None,
    ) -> tuple[np.ndarray, str]:
        """Draw one texture of ``size`` = (H, W); returns ``(float32 HxWx3 in [0,1], source id)``.

        ``kind`` forces a source kind (one of :data:`TEXTURE_KINDS`); photo ids in
        ``exclude`` are avoided so the layers of one scene use different sources.
        """
        size = (int(size[0]), int(size[1]))
        if size[0] < 1 or size[1] < 1:
            raise ValueError(f"texture size must be positive, got {size}")
        if kind is None:
            if rng.random() < self.homogeneous_prob:
                kind = "homogeneous"
            else:
                kind = self.kinds[int(rng.choice(len(self.kinds), p=self.probs))]
        if kind == "photo":
            return self.photo(rng, size, exclude)
        makers = {
            "noise": noise_texture,
            "stripes": stripes_texture,
            "checkers": checkers_texture,
            "homogeneous": homogeneous_texture,
        }
        if kind not in makers:
            raise ValueError(f"unknown texture kind {kind!r}; valid: {', '.join(TEXTURE_KINDS)}")
        return makers[kind](rng, size), kind
