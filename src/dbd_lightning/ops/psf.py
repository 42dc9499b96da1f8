"""Point-spread functions (PSFs) of defocus and image blurring with them.

Conventions
-----------
* A *disk* (pillbox) PSF of radius ``r`` pixels is the normalised indicator of
  the circle of confusion: ``k(x, y) = area(pixel(x, y) ∩ disk(0, r)) / (pi r^2)``.
  The pixel-area coverage is computed by supersampling each pixel on an
  ``s x s`` grid (anti-aliased boundary) and the kernel is renormalised to sum 1.
  A radius ``r <= 0.5`` px fits inside the centre pixel, so the kernel is the
  identity (delta).
* A *Gaussian* PSF of standard deviation ``sigma`` is sampled at the pixel
  centres, ``k(x, y) ∝ exp(-(x^2 + y^2) / (2 sigma^2))``, truncated at
  ``truncate * sigma`` and normalised to sum 1.
* Moment matching between the two: a disk of radius ``r`` has the per-axis
  variance ``r^2 / 4``, i.e. the Gaussian with ``sigma = r / 2`` has the same
  second moments (``sigma_per_radius = 0.5``).

Blurring always goes through :func:`cv2.filter2D` with ``BORDER_REFLECT``
(OpenCV switches to a DFT implementation for large kernels).
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

__all__ = [
    "DISK_SUPERSAMPLING",
    "disk_kernel",
    "gaussian_kernel",
    "psf_kernel",
    "kernel_half_size",
    "blur",
    "blur_with_psf",
    "PSF_KINDS",
]

#: Sub-samples per pixel and axis used for the anti-aliased disk coverage.
DISK_SUPERSAMPLING: int = 16
#: Recognised PSF names.
PSF_KINDS: tuple[str, ...] = ("disk", "gaussian")
# Kernels are cached on radii rounded to this many decimals.
_CACHE_DECIMALS = 4


def _check_finite_nonneg(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def kernel_half_size(radius: float) -> int:
    """Half width ``h`` (kernel is ``(2h+1) x (2h+1)``) of the disk kernel of ``radius``.

    Pixel ``k`` covers ``[k - 1/2, k + 1/2]``, so it meets the disk iff
    ``k - 1/2 < r``, i.e. the largest offset is ``ceil(r + 1/2) - 1``.
    """
    radius = _check_finite_nonneg("radius", radius)
    if radius <= 0.5:
        return 0
    return int(math.ceil(radius + 0.5)) - 1


@lru_cache(maxsize=512)
def _disk_kernel_cached(radius: float, supersampling: int) -> np.ndarray:
    half = kernel_half_size(radius)
    if half == 0:
        kernel = np.ones((1, 1), np.float32)
    else:
        s = supersampling
        # sub-sample positions inside pixel k: k - 1/2 + (j + 1/2)/s, j = 0..s-1
        offsets = (np.arange(s, dtype=np.float64) + 0.5) / s - 0.5
        centres = np.arange(-half, half + 1, dtype=np.float64)
        coords = (centres[:, None] + offsets[None, :]).ravel()  # ((2h+1)*s,)
        inside = (coords[:, None] ** 2 + coords[None, :] ** 2) <= radius * radius
        n = 2 * half + 1
        coverage = inside.reshape(n, s, n, s).mean(axis=(1, 3))
        # drop an outer ring whose sliver of coverage fell between the sub-samples
        while coverage.shape[0] > 1 and not coverage[0].any():
            coverage = coverage[1:-1, 1:-1]
        kernel = (coverage / coverage.sum()).astype(np.float32)
    kernel.setflags(write=False)
    return kernel


def disk_kernel(radius: float, supersampling: int = DISK_SUPERSAMPLING) -> np.ndarray:
    """Anti-aliased disk (pillbox) PSF of ``radius`` pixels, float32, sums to 1.

    Each tap is the fraction of its pixel square covered by the disk (estimated
    on ``supersampling x supersampling`` sub-pixel samples), renormalised to sum
    1; its half width is at most :func:`kernel_half_size` (an outer ring whose
    coverage is below the sampling resolution is dropped). ``radius <= 0.5``
    returns the 1x1 identity kernel. The result is cached and
    read-only; copy it before modifying.
    """
    radius = _check_finite_nonneg("radius", radius)
    if int(supersampling) < 1:
        raise ValueError(f"supersampling must be >= 1, got {supersampling!r}")
    return _disk_kernel_cached(round(radius, _CACHE_DECIMALS), int(supersampling))


@lru_cache(maxsize=512)
def _gaussian_kernel_cached(sigma: float, half: int) -> np.ndarray:
    if sigma == 0 or half == 0:
        kernel = np.ones((1, 1), np.float32)
    else:
        x = np.arange(-half, half + 1, dtype=np.float64)
        g = np.exp(-(x * x) / (2.0 * sigma * sigma))
        g /= g.sum()
        kernel = np.outer(g, g).astype(np.float32)
        kernel /= kernel.sum()
    kernel.setflags(write=False)
    return kernel


def gaussian_kernel(sigma: float, half_size: int | None = None, truncate: float = 4.0) -> np.ndarray:
    """Isotropic Gaussian PSF ``exp(-(x^2+y^2)/(2 sigma^2))`` sampled at pixel centres.

    The kernel is ``(2h+1) x (2h+1)`` with ``h = half_size`` or, by default,
    ``h = ceil(truncate * sigma)``; it is normalised to sum 1 (float32, cached,
    read-only). ``sigma == 0`` gives the identity kernel. ``gaussian_kernel(2, 3)``
    is the 7x7 sigma-2 kernel of the BTBNet pretraining recipe.
    """
    sigma = _check_finite_nonneg("sigma", sigma)
    if half_size is None:
        if truncate <= 0:
            raise ValueError(f"truncate must be > 0, got {truncate!r}")
        half = int(math.ceil(truncate * sigma))
    else:
        half = int(half_size)
        if half < 0:
            raise ValueError(f"half_size must be >= 0, got {half_size!r}")
    return _gaussian_kernel_cached(round(sigma, _CACHE_DECIMALS), half)


def psf_kernel(kind: str, radius: float, sigma_per_radius: float = 0.5) -> np.ndarray:
    """PSF kernel for a blur-circle ``radius`` (px): ``'disk'`` or ``'gaussian'``.

    The Gaussian uses ``sigma = sigma_per_radius * radius`` (0.5 = same second
    moments as the disk). ``radius <= 0.5`` gives the identity for both kinds.
    """
    radius = _check_finite_nonneg("radius", radius)
    if kind == "disk":
        return disk_kernel(radius)
    if kind == "gaussian":
        if radius <= 0.5:
            return gaussian_kernel(0.0)
        return gaussian_kernel(sigma_per_radius * radius)
    raise ValueError(f"unknown psf {kind!r}; valid: {', '.join(PSF_KINDS)}")


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an ``HxW`` or ``HxWxC`` image with a 2-D ``kernel`` (float32 out).

    Uses ``cv2.filter2D`` with ``BORDER_REFLECT`` (the kernels here are symmetric,
    so correlation equals convolution). A 1x1 kernel returns a float32 copy.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be HxW or HxWxC, got shape {image.shape}")
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D, got shape {kernel.shape}")
    src = np.ascontiguousarray(image, dtype=np.float32)
    if kernel.shape == (1, 1):
        return src * kernel[0, 0] if kernel[0, 0] != 1 else src.copy()
    if src.ndim == 3 and src.shape[2] > 4:
        # filter2D handles at most 4 channels in one call on every backend
        return np.stack([blur(src[..., c], kernel) for c in range(src.shape[2])], axis=-1)
    out = cv2.filter2D(src, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)
    if src.ndim == 3 and out.ndim == 2:  # single-channel HxWx1 input
        out = out[..., None]
    return out


def blur_with_psf(
    image: np.ndarray,
    radius: float,
    kind: str = "disk",
    sigma_per_radius: float = 0.5,
    direct_max_radius: float | None = None,
) -> np.ndarray:
    """Blur ``image`` with the PSF of blur-circle ``radius`` (px), optionally multi-resolution.

    With ``direct_max_radius=None`` (or ``radius <= direct_max_radius``) this is
    exactly ``blur(image, psf_kernel(kind, radius))``.

    Otherwise (fast path for large radii) the image is reduced by the smallest
    power of two ``s`` with ``radius / s <= direct_max_radius`` (exact ``s x s`` box
    average after reflect padding), blurred there with the PSF of a radius
    ``r'`` and enlarged back bilinearly. The box (variance ``s^2/12``) and the
    bilinear tent (``s^2/6``) add ``s^2/4`` per axis, so ``r'`` is chosen to keep
    the total second moment equal to that of the full-resolution PSF:
    ``v(r') s^2 + s^2/4 = v(r)`` with the per-axis variance ``v(r) = r^2/4`` (disk)
    or ``(sigma_per_radius r)^2`` (Gaussian); for the disk ``r' = sqrt(r^2 - s^2)/s``.
    Same amount of blur, softer disk rim.
    """
    radius = _check_finite_nonneg("radius", radius)
    if direct_max_radius is None or radius <= direct_max_radius:
        return blur(image, psf_kernel(kind, radius, sigma_per_radius))
    if direct_max_radius <= 0.5:
        raise ValueError(f"direct_max_radius must be > 0.5 or None, got {direct_max_radius!r}")
    s = 2 ** int(math.ceil(math.log2(radius / direct_max_radius)))
    src = np.ascontiguousarray(image, dtype=np.float32)
    h, w = src.shape[:2]
    ph, pw = (-h) % s, (-w) % s
    if ph or pw:
        src = cv2.copyMakeBorder(src, 0, ph, 0, pw, cv2.BORDER_REFLECT)
    small = cv2.resize(src, ((w + pw) // s, (h + ph) // s), interpolation=cv2.INTER_AREA)
    per_axis = 0.25 if kind == "disk" else sigma_per_radius * sigma_per_radius  # v(r) = per_axis r^2
    r_small = math.sqrt(max(radius * radius - s * s / (4.0 * per_axis), 0.0)) / s
    small = blur(small, psf_kernel(kind, r_small, sigma_per_radius))
    out = cv2.resize(small, (w + pw, h + ph), interpolation=cv2.INTER_LINEAR)
    if out.ndim == 2 and src.ndim == 3:
        out = out[..., None]
    return np.ascontiguousarray(out[:h, :w])
