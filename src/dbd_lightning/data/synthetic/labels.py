"""Ground-truth labels of a rendered sample (both scene kinds, :mod:`.renderer` and :mod:`.photographic`).


Returned ground truth (all numpy, ``H x W``):

* ``image`` uint8 ``HxWx3`` RGB.
* ``mask`` uint8 {0, 1}: **in focus = 1** where ``radius <= r0``.
* ``radius`` float32: rendered blur radius (px) of the visible surface.
* ``depth`` float32 in [0, 1]: visible depth, linear in metres,
  ``(d - depth_range_m[0]) / (depth_range_m[1] - depth_range_m[0])`` (0 = near
  limit, 1 = far limit of the config's range; the same for every sample).
* ``dof_edge`` uint8 {0, 1}: boundary of the focus mask, i.e. pixels whose
  4-neighbourhood (inside the image) holds the other mask value (both sides,
  = 3x3-cross dilation != erosion).
* ``edge_type`` uint8 {0, 1, 2}: 2 = *depth edge*: a pixel of a layer that
  occludes a 4-neighbour of a farther layer whose radius differs by more than
  ``blur_change_tol`` px (on the occluding side); 1 = *pattern edge*: Canny
  (on the grey all-in-focus composite) edge pixels that are not within 1 px of
  a depth edge (this includes layer boundaries without a blur change); 0 = none.
* ``layers`` uint8: label of the visible layer (0 = background, 1..n objects
  ordered far to near).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SAMPLE_KEYS", "edge_types", "focus_boundary"]

#: Keys of the dict returned by :meth:`SyntheticRenderer.render`.
SAMPLE_KEYS: tuple[str, ...] = ("image", "mask", "radius", "depth", "dof_edge", "edge_type", "layers")


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_SQUARE = np.ones((3, 3), np.uint8)


def focus_boundary(mask: np.ndarray) -> np.ndarray:
    """Boundary of a binary mask: pixels with a 4-neighbour of the other value (uint8 {0,1}).

    ``dilate != erode`` with a 3x3 cross; pixels outside the image do not count.
    """
    m = (np.asarray(mask) > 0).astype(np.uint8)
    return (cv2.dilate(m, _CROSS) != cv2.erode(m, _CROSS)).astype(np.uint8)


def edge_types(
    labels: np.ndarray,
    radius: np.ndarray,
    sharp_rgb: np.ndarray,
    blur_change_tol: float = 0.25,
    canny_low: int = 50,
    canny_high: int = 120,
) -> np.ndarray:
    """Pattern/depth edge labels (0 none, 1 pattern, 2 depth), see the module docstring.

    ``labels`` are ordered back to front (a higher label occludes a lower one),
    ``sharp_rgb`` is the all-in-focus composite in [0, 1].
    """
    lab = labels.astype(np.int16)
    h, w = lab.shape
    depth_edge = np.zeros((h, w), bool)
    touched = np.zeros((h, w), bool)
    for axis in (0, 1):
        a = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        b = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        change = np.abs(radius[a] - radius[b]) > blur_change_tol
        front_a = (lab[a] > lab[b]) & change
        front_b = (lab[b] > lab[a]) & change
        depth_edge[a] |= front_a
        depth_edge[b] |= front_b
        touched[a] |= front_a | front_b
        touched[b] |= front_a | front_b
    grey = cv2.cvtColor((np.clip(sharp_rgb, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    canny = cv2.Canny(grey, canny_low, canny_high, L2gradient=True) > 0
    band = cv2.dilate(touched.astype(np.uint8), _SQUARE) > 0
    out = np.zeros((h, w), np.uint8)
    out[canny & ~band] = 1
    out[depth_edge] = 2
    return out
