"""Thin-lens defocus: circle-of-confusion size as a function of depth.

For a thin lens of focal length ``f`` and f-number ``N`` (aperture diameter
``A = f / N``) focused at distance ``s_f``, a point at depth ``d`` is imaged as a
blur circle whose diameter on the sensor is

    c(d) = A * f * |d - s_f| / (d * (s_f - f)) = f^2 |d - s_f| / (N d (s_f - f))

(all lengths in metres; e.g. Potmesil & Chakravarty 1981; the camera model of
``data/synthetic``). With a sensor of width ``w_s`` metres sampled by an
image ``W`` pixels wide, one pixel is ``w_s / W`` metres, hence
``c_px = c * W / w_s`` and the blur (PSF) radius in pixels is ``r = c_px / 2``.

Because ``c`` is affine in ``1/d`` (``c ∝ |1 - s_f / d|``), the *signed* radius
returned by :func:`signed_coc_radius_px` is convenient for planes, whose inverse
depth is affine in image coordinates.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "coc_diameter_m",
    "coc_diameter_px",
    "coc_radius_px",
    "signed_coc_radius_px",
    "depth_of_field_limits",
]


def _check_camera(focal_length_m: float, f_number: float, focus_distance_m: float) -> None:
    if not focal_length_m > 0:
        raise ValueError(f"focal_length_m must be > 0, got {focal_length_m!r}")
    if not f_number > 0:
        raise ValueError(f"f_number must be > 0, got {f_number!r}")
    if not focus_distance_m > focal_length_m:
        raise ValueError(
            f"focus_distance_m ({focus_distance_m!r}) must exceed the focal length ({focal_length_m!r})"
        )


def _depth_array(depth_m) -> np.ndarray:
    d = np.asarray(depth_m)
    if d.dtype not in (np.float32, np.float64):  # float32 maps stay float32 (speed)
        d = d.astype(np.float64)
    if np.any(~(d > 0)):
        raise ValueError("depths must be > 0 metres (and not NaN)")
    return d


def signed_coc_radius_px(
    depth_m,
    focal_length_m: float,
    f_number: float,
    focus_distance_m: float,
    sensor_width_m: float,
    image_width_px: int,
) -> np.ndarray:
    """Signed blur radius in pixels: ``r_s = K (1 - s_f / d)``, ``|r_s| = r``.

    ``K = f^2 / (N (s_f - f)) * (W / w_s) / 2``. Negative in front of the focus
    plane, positive behind it, zero at ``d = s_f``; increasing with depth.
    """
    _check_camera(focal_length_m, f_number, focus_distance_m)
    if not sensor_width_m > 0:
        raise ValueError(f"sensor_width_m must be > 0, got {sensor_width_m!r}")
    if not image_width_px > 0:
        raise ValueError(f"image_width_px must be > 0, got {image_width_px!r}")
    d = _depth_array(depth_m)
    k = focal_length_m**2 / (f_number * (focus_distance_m - focal_length_m))
    k *= image_width_px / sensor_width_m / 2.0
    return k * (1.0 - focus_distance_m / d)


def coc_diameter_m(depth_m, focal_length_m: float, f_number: float, focus_distance_m: float) -> np.ndarray:
    """Blur-circle diameter on the sensor in metres, ``c = f^2 |d - s_f| / (N d (s_f - f))``.

    Vectorised over ``depth_m`` (scalar or array, metres, > 0).
    """
    _check_camera(focal_length_m, f_number, focus_distance_m)
    d = _depth_array(depth_m)
    return (
        focal_length_m**2
        * np.abs(d - focus_distance_m)
        / (f_number * d * (focus_distance_m - focal_length_m))
    )


def coc_diameter_px(
    depth_m,
    focal_length_m: float,
    f_number: float,
    focus_distance_m: float,
    sensor_width_m: float,
    image_width_px: int,
) -> np.ndarray:
    """Blur-circle diameter in pixels, ``c_px = c * W / w_s``."""
    if not sensor_width_m > 0:
        raise ValueError(f"sensor_width_m must be > 0, got {sensor_width_m!r}")
    if not image_width_px > 0:
        raise ValueError(f"image_width_px must be > 0, got {image_width_px!r}")
    c = coc_diameter_m(depth_m, focal_length_m, f_number, focus_distance_m)
    return c * (image_width_px / sensor_width_m)


def coc_radius_px(
    depth_m,
    focal_length_m: float,
    f_number: float,
    focus_distance_m: float,
    sensor_width_m: float,
    image_width_px: int,
) -> np.ndarray:
    """Blur (PSF) radius in pixels, ``r = c_px / 2 = f^2 |d - s_f| W / (2 N d (s_f - f) w_s)``."""
    return 0.5 * coc_diameter_px(
        depth_m, focal_length_m, f_number, focus_distance_m, sensor_width_m, image_width_px
    )


def depth_of_field_limits(
    focal_length_m: float,
    f_number: float,
    focus_distance_m: float,
    max_coc_m: float,
) -> tuple[float, float]:
    """Near and far depths where ``c(d) = max_coc_m`` (far = ``inf`` beyond the hyperfocal).

    Solving ``f^2 |d - s_f| = c N d (s_f - f)`` for ``d``:
    ``d_near = f^2 s_f / (f^2 + c N (s_f - f))`` and
    ``d_far = f^2 s_f / (f^2 - c N (s_f - f))`` when the denominator is > 0.
    """
    _check_camera(focal_length_m, f_number, focus_distance_m)
    if not max_coc_m > 0:
        raise ValueError(f"max_coc_m must be > 0, got {max_coc_m!r}")
    f2 = focal_length_m**2
    t = max_coc_m * f_number * (focus_distance_m - focal_length_m)
    near = f2 * focus_distance_m / (f2 + t)
    far = f2 * focus_distance_m / (f2 - t) if f2 > t else float("inf")
    return near, far
