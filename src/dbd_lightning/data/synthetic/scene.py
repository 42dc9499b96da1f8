"""Random layered scenes: a background plane and 1-3 textured foreground objects.

A scene is a list of layers ordered back to front:

* label 0, the **background**: covers the whole image; either fronto-parallel
  (constant depth) or a **tilted plane**. For a plane seen through a pinhole,
  inverse depth is affine in image coordinates, so the tilted plane is
  ``1/d(x, y) = 1/d_far + p(x, y) (1/d_near - 1/d_far)`` with ``p`` the
  position along a random direction, scaled to [0, 1] over the image; depth (and
  blur) therefore varies smoothly.
* labels 1..n (n drawn in ``n_layers``), **foreground objects** of random shape
  (ellipse, polygon, smooth Fourier blob) at their own constant depth, sorted far
  to near, each strictly in front of the whole background, each textured by a
  different source. Object alpha is the anti-aliased coverage of the shape; the
  label map takes a layer where its coverage is >= 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .textures import TextureBank, pixel_grid

__all__ = ["Layer", "Scene", "SHAPES", "loguniform", "random_shape", "make_background_depth", "make_scene"]

SHAPES: tuple[str, ...] = ("ellipse", "polygon", "blob")
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


@dataclass
class Layer:
    """One scene layer restricted to its bounding box ``box = (y0, y1, x0, x1)``.

    ``alpha`` (h x w float32 coverage in [0, 1]; ``None`` = fully opaque),
    ``texture`` (h x w x 3 float32 sharp RGB), ``depth_m`` (float for a
    fronto-parallel layer or an h x w float array for a tilted plane; the photographic scenes'
    background is always an array, see :meth:`.core.LayeredRenderer.composite`).
    """

    label: int
    box: tuple[int, int, int, int]
    alpha: np.ndarray | None
    texture: np.ndarray
    depth_m: float | np.ndarray
    source: str
    shape: str


@dataclass
class Scene:
    """Layers, back to front (the label, depth and radius maps are the renderer core's, :mod:`.core`)."""

    layers: list[Layer]


def loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw log-uniform in ``[lo, hi]`` (``lo`` when ``hi <= lo``)."""
    if hi <= lo:
        return float(lo)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def random_shape(rng: np.random.Generator, size: tuple[int, int], diameter: float, kind: str) -> np.ndarray:
    """Anti-aliased uint8 mask (0..255) of a random ``kind`` shape about ``diameter`` px wide.

    ``ellipse``: random axes ratio 0.35-1 and angle; ``polygon``: 3-8 vertices at
    sorted random angles and radii 0.45-1 R; ``blob``: closed curve
    ``R (1 + sum_k a_k cos(k t + phi_k))``, k = 2..5. The centre is uniform over
    the image, so shapes may leave the frame.
    """
    h, w = size
    canvas = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    radius = diameter / 2.0
    if kind == "ellipse":
        a = radius
        b = radius * rng.uniform(0.35, 1.0)
        angle = rng.uniform(0, 180)
        cv2.ellipse(
            canvas,
            (int(round(cx * _ONE)), int(round(cy * _ONE))),
            (max(1, int(round(a * _ONE))), max(1, int(round(b * _ONE)))),
            angle,
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
            _SHIFT,
        )
        return canvas
    if kind == "polygon":
        n = int(rng.integers(3, 9))
        t = np.sort(rng.uniform(0, 2 * math.pi, n))
        r = radius * rng.uniform(0.45, 1.0, n)
    elif kind == "blob":
        n = 72
        t = np.linspace(0, 2 * math.pi, n, endpoint=False)
        r = np.ones(n)
        for k in range(2, 6):
            r += rng.uniform(0, 0.3 / math.sqrt(k)) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
        r = radius * np.clip(r, 0.25, None) / r.max()
    else:
        raise ValueError(f"unknown shape {kind!r}; valid: {', '.join(SHAPES)}")
    pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)
    pts = np.round(pts * _ONE).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, cv2.LINE_AA, _SHIFT)
    return canvas


def make_background_depth(
    rng: np.random.Generator,
    size: tuple[int, int],
    depth_far_m: float,
    tilted: bool,
    near_ratio: float,
) -> np.ndarray | float:
    """Background depth: ``depth_far_m`` (fronto-parallel) or a tilted plane (HxW float32).

    The plane's inverse depth is affine in image coordinates, from ``1/depth_far_m``
    at one image extreme to ``1/(near_ratio * depth_far_m)`` at the opposite one,
    along a uniformly random direction.
    """
    if not tilted:
        return float(depth_far_m)
    h, w = size
    theta = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(theta), math.sin(theta)
    ys, xs = pixel_grid((h, w))
    # p = x cos + y sin, rescaled to [0, 1] using its extremes at the image corners
    corners = [0.0, (w - 1) * c, (h - 1) * s, (w - 1) * c + (h - 1) * s]
    pmin, pmax = min(corners), max(corners)
    inv_far = 1.0 / depth_far_m
    inv_near = 1.0 / (near_ratio * depth_far_m)
    g = (inv_near - inv_far) / max(pmax - pmin, 1e-6)
    inv = xs * np.float32(c * g)
    inv += ys * np.float32(s * g)
    inv += np.float32(inv_far - pmin * g)
    return np.reciprocal(inv, out=inv)


def make_scene(rng: np.random.Generator, cfg: Any, bank: TextureBank) -> Scene:
    """Draw a random layered scene.

    ``cfg`` provides (e.g. a ``RenderConfig``): ``size``, ``background_depth_m``,
    ``tilted_prob``, ``tilt_near_ratio``, ``n_layers``, ``object_depth_m``,
    ``object_size_frac``, ``shapes``, ``min_object_area_frac``.
    """
    h, w = cfg.size
    depth_far = loguniform(rng, *cfg.background_depth_m)
    tilted = rng.random() < cfg.tilted_prob
    near_ratio = rng.uniform(*cfg.tilt_near_ratio)
    bg_depth = make_background_depth(rng, (h, w), depth_far, tilted, near_ratio)
    used: list[str] = []
    texture, source = bank.sample(rng, (h, w))
    used.append(source)
    layers = [Layer(0, (0, h, 0, w), None, texture, bg_depth, source, "plane" if tilted else "fronto")]

    bg_min = float(np.min(bg_depth))
    n_obj = int(rng.integers(cfg.n_layers[0], cfg.n_layers[1] + 1))
    lo, hi = cfg.object_depth_m
    hi = min(hi, 0.9 * bg_min)
    lo = min(lo, 0.9 * hi)
    objects = []
    min_area = cfg.min_object_area_frac * h * w
    for _ in range(n_obj):
        depth = loguniform(rng, lo, hi)
        kind = cfg.shapes[int(rng.integers(len(cfg.shapes)))]
        for _attempt in range(8):
            diameter = rng.uniform(*cfg.object_size_frac) * min(h, w)
            canvas = random_shape(rng, (h, w), diameter, kind)
            x, y, bw, bh = cv2.boundingRect(canvas)
            if bw * bh > 0 and np.count_nonzero(canvas[y : y + bh, x : x + bw] >= 128) >= min_area:
                break
        if bw * bh == 0:
            continue
        alpha = canvas[y : y + bh, x : x + bw].astype(np.float32) * np.float32(1.0 / 255.0)
        objects.append((depth, (y, y + bh, x, x + bw), alpha, kind))
    objects.sort(key=lambda o: -o[0])  # far to near = compositing order

    for label, (depth, box, alpha, kind) in enumerate(objects, start=1):
        y0, y1, x0, x1 = box
        texture, source = bank.sample(rng, (y1 - y0, x1 - x0), exclude=used)
        used.append(source)
        layers.append(Layer(label, box, alpha, texture, float(depth), source, kind))
    return Scene(layers)
