"""Tiles over a large image and their blending, with memory bounded by the tile size.

Tiles form a grid: :func:`tile_starts` spreads them evenly along each axis,
overlapping by at least ``overlap`` pixels. Each tile's prediction is weighted
by a separable window ``w_y(y) * w_x(x)`` and the weighted sum is divided by
the sum of the windows. Because every tile of a grid row shares ``w_y`` and
every tile of a column shares ``w_x``, the sum of the windows is itself the
outer product of two 1-D sums: :func:`blend_tiles` keeps one float32
accumulator of the image's size and two vectors (no full-size weight image,
no float64).

Windows (``window=``):

* ``hann`` (default): raised-cosine tapers ``sin^2`` / ``cos^2`` over each
  overlap with a neighbouring tile, 1 elsewhere and at the image border. In an
  overlap the two tapers sum to exactly 1 (``sin^2 + cos^2``) and each tile's
  weight falls to ~0 at its own edge, so the blend is continuous: no seams
  (a tile edge inside the image never shows).
* ``linear``: the earlier ramps, ``1/(k+1) .. k/(k+1)`` over ``overlap`` pixels
  at *every* tile border (also at the image border). The weight of a tile is
  not 0 at its edge, so a jump between two tiles' predictions leaves a step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

WINDOWS = ("hann", "linear")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` overlap.

    The tiles are spread evenly, the first at 0 and the last ending at ``length``.
    """
    if tile >= length:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be in [0, tile size={tile}), got {overlap}")
    n = math.ceil((length - overlap) / (tile - overlap))
    n = max(n, 2)
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def linear_ramp(n: int, overlap: int) -> np.ndarray:
    """The legacy 1-D window: linear ramps over ``overlap`` pixels at both ends (never 0), 1 inside."""
    r = np.ones(n, np.float32)
    k = min(overlap, n // 2)
    if k > 0:
        up = np.arange(1, k + 1, dtype=np.float32) / (k + 1)
        r[:k] = up
        r[n - k:] = up[::-1]
    return r


def cosine_taper(n: int) -> np.ndarray:
    """``sin^2(pi/2 * (i + 0.5) / n)`` for ``i < n``: rises from ~0 to ~1; ``taper + taper[::-1] == 1``."""
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    return (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)


def axis_windows(length: int, tile: int, starts: Sequence[int], overlap: int, window: str = "hann") -> list[np.ndarray]:
    """The 1-D window of each tile along one axis (``tile`` = the tile's extent on that axis)."""
    if window not in WINDOWS:
        raise ValueError(f"unknown tile blending window {window!r}; expected one of {WINDOWS}")
    if window == "linear":
        return [linear_ramp(tile, overlap) for _ in starts]
    out = []
    for i, s in enumerate(starts):
        w = np.ones(tile, np.float32)
        if i > 0:  # overlap with the previous tile: rise
            k = min(starts[i - 1] + tile - s, tile // 2)
            if k > 0:
                w[:k] = cosine_taper(k)
        if i < len(starts) - 1:  # overlap with the next tile: fall
            k = min(s + tile - starts[i + 1], tile // 2)
            if k > 0:
                w[tile - k:] = cosine_taper(k)[::-1]
        out.append(w)
    return out


def tile_grid(h: int, w: int, tile_h: int, tile_w: int, overlap: int) -> tuple[list[int], list[int], int, int]:
    """``(row starts, column starts, tile height, tile width)``; a tile never exceeds the image."""
    th, tw = min(tile_h, h), min(tile_w, w)
    return tile_starts(h, th, overlap), tile_starts(w, tw, overlap), th, tw


def blend_tiles(
    shape: tuple[int, int],
    tile: tuple[int, int],
    overlap: int,
    predict: Callable[[list[tuple[int, int, int, int]]], list[np.ndarray]],
    batch: int = 4,
    window: str = "hann",
) -> np.ndarray:
    """Blend per-tile predictions into one float32 ``(H, W)`` map.

    ``predict(boxes)`` gets up to ``batch`` boxes ``(y, x, th, tw)`` and returns
    one float ``(th, tw)`` map per box. Peak memory: the float32 result plus
    ``batch`` tiles (the weight normalisation is separable, done in row blocks).
    Every output pixel is a convex combination of tile values, so the result is
    clipped to the tiles' value range: float32 rounding of the weights must not put a
    blended probability of 1 at 1.0000001.
    """
    h, w = shape
    ys, xs, th, tw = tile_grid(h, w, tile[0], tile[1], overlap)
    wy, wx = axis_windows(h, th, ys, overlap, window), axis_windows(w, tw, xs, overlap, window)
    sum_y, sum_x = np.zeros(h, np.float32), np.zeros(w, np.float32)
    for s, win in zip(ys, wy, strict=True):
        sum_y[s:s + th] += win
    for s, win in zip(xs, wx, strict=True):
        sum_x[s:s + tw] += win
    acc = np.zeros((h, w), np.float32)
    lo, hi = np.inf, -np.inf
    boxes = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    for k in range(0, len(boxes), max(1, int(batch))):
        chunk = boxes[k:k + max(1, int(batch))]
        maps = predict([(ys[i], xs[j], th, tw) for i, j in chunk])
        for (i, j), p in zip(chunk, maps, strict=True):
            y, x = ys[i], xs[j]
            p = np.asarray(p, np.float32)
            lo, hi = min(lo, float(p.min())), max(hi, float(p.max()))
            acc[y:y + th, x:x + tw] += p * np.outer(wy[i], wx[j])
    rows = max(1, (1 << 18) // max(w, 1))  # normalise ~1 MB at a time
    for r in range(0, h, rows):
        acc[r:r + rows] /= np.outer(sum_y[r:r + rows], sum_x)
    return np.clip(acc, lo, hi, out=acc)
