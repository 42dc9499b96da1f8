"""Inference modes: the papers' protocol and two scale-aware ones (``infer.*`` in predict / eval configs;
the settings themselves, checked, are :class:`~.settings.InferenceSettings`).

* ``resize`` (default, the papers' test protocol): the whole image is resized to
  the training input size (``image_size``), predicted, and the map resized back.
  A 640 px photo predicted by a 320 px network is seen at half its pixel scale,
  with half its blur radius. ``tile.*`` may still tile very large images.
* ``scale``: the whole image is resized by ``infer.scale`` (``1.0`` = native
  pixels, ``0.5`` = half size; each side rounded to a multiple of the network's
  stride), predicted, and the map resized back: the network sees blur at the
  pixel scale it was trained for, whatever the photo's size.
* ``tile``: native-resolution tiles of ``image_size / infer.scale`` pixels
  (each resized to ``image_size``, so seen at ``infer.scale``), overlapping by
  ``infer.overlap`` (a fraction of the tile side, as ``tile.overlap`` is of
  ``tile.size``) and blended with ``tile.window`` (``hann``: seamless).
  Memory is bounded by the tile size.
"""

from __future__ import annotations

INFER_MODES = ("resize", "scale", "tile")


def scaled_size(h: int, w: int, scale: float, multiple: int = 32) -> tuple[int, int]:
    """``(h, w) * scale`` rounded to the nearest multiple of ``multiple`` (at least one multiple)."""
    m = max(1, int(multiple))
    return max(m, round(h * scale / m) * m), max(m, round(w * scale / m) * m)


def tile_side(input_side: int, scale: float) -> int:
    """Native pixels of a tile that the network sees at ``scale`` when it is resized to ``input_side``."""
    return max(1, round(int(input_side) / float(scale)))
