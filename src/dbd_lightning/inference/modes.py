"""Inference modes: the papers' protocol and two scale-aware ones (``infer.*`` in predict / eval configs).

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
  ``infer.overlap`` (a fraction of the tile side) and blended with
  ``tile.window`` (``hann``: seamless). Memory is bounded by the tile size.
"""

from __future__ import annotations

from collections.abc import Mapping

INFER_MODES = ("resize", "scale", "tile")


def scaled_size(h: int, w: int, scale: float, multiple: int = 32) -> tuple[int, int]:
    """``(h, w) * scale`` rounded to the nearest multiple of ``multiple`` (at least one multiple)."""
    m = max(1, int(multiple))
    return max(m, round(h * scale / m) * m), max(m, round(w * scale / m) * m)


def tile_side(input_side: int, scale: float) -> int:
    """Native pixels of a tile that the network sees at ``scale`` when it is resized to ``input_side``."""
    return max(1, round(int(input_side) / float(scale)))


def infer_modes(cfg: Mapping) -> list[str]:
    """``infer.mode`` as a list (eval accepts several: one table row per mode)."""
    node = cfg.get("infer") or {}
    mode = node.get("mode", "resize") if hasattr(node, "get") else "resize"
    modes = [str(m) for m in mode] if isinstance(mode, list | tuple) or type(mode).__name__ == "ListConfig" else [
        str(mode)]
    bad = [m for m in modes if m not in INFER_MODES]
    if bad:
        from ..utils.errors import UserError

        raise UserError(f"infer.mode={bad[0]!r} is not a mode; use one of {', '.join(INFER_MODES)}")
    return modes


def predictor_kwargs(cfg: Mapping, mode: str | None = None) -> dict:
    """:class:`~dbd_lightning.inference.predictor.CheckpointPredictor` keyword arguments from ``tile.*``, ``infer.*``, ``int8.*``."""
    t = cfg.get("tile") or {}
    infer = cfg.get("infer") or {}
    scale = float(infer.get("scale", 1.0))
    if not scale > 0:
        from ..utils.errors import UserError

        raise UserError(f"infer.scale={scale} must be > 0 (1.0 = native pixels, 0.5 = half size)")
    if not 0 <= float(infer.get("overlap", 0.25)) < 0.5:
        from ..utils.errors import UserError

        raise UserError(f"infer.overlap={infer.get('overlap')} must be in [0, 0.5) (a fraction of the tile side)")
    from .tiling import WINDOWS

    if str(t.get("window", "hann")) not in WINDOWS:
        from ..utils.errors import UserError

        raise UserError(f"tile.window={t.get('window')!r} is not a blending window; use one of {', '.join(WINDOWS)}")
    return dict(
        tile=t.get("mode", "auto"), tile_above=t.get("above", 1280), tile_size=t.get("size", 640),
        tile_overlap=t.get("overlap", 128), tile_batch=t.get("batch", 4), tile_window=str(t.get("window", "hann")),
        mode=mode or infer_modes(cfg)[0], scale=scale, overlap_fraction=float(infer.get("overlap", 0.25)),
        int8=_int8_settings(cfg), **_fusion(infer),
    )


def _fusion(infer: Mapping) -> dict:
    """``infer.flip`` / ``infer.fusion_scales`` (test-time fusion), checked; a bad value is a user error."""
    from .image_predictor import _fusion_scales, _switch

    try:
        return dict(flip=_switch(infer.get("flip", False), "infer.flip"),
                    fusion_scales=_fusion_scales(infer.get("fusion_scales", [1.0])))
    except ValueError as exc:
        from ..utils.errors import UserError

        raise UserError(str(exc)) from None


def _int8_settings(cfg: Mapping):
    """``int8:`` (``backend=onnxruntime_int8``) as :class:`~.quantize.Int8Settings`; a bad key is a user error."""
    from .quantize import Int8Settings

    try:
        return Int8Settings.from_mapping(cfg.get("int8") or {})
    except (TypeError, ValueError) as exc:
        from ..utils.errors import UserError

        raise UserError(str(exc)) from None


def mode_label(cfg: Mapping, mode: str) -> str:
    """Short name of a mode for table rows: ``resize``, ``scale 0.5``, ``tile 1``, with test-time fusion
    ``resize +flip x0.75,1,1.25``."""
    infer = cfg.get("infer") or {}
    label = mode if mode == "resize" else f"{mode} {float(infer.get('scale', 1.0)):g}"
    fusion = _fusion(infer)
    if fusion["flip"]:
        label += " +flip"
    if fusion["fusion_scales"] != (1.0,):
        label += " x" + ",".join(f"{s:g}" for s in fusion["fusion_scales"])
    return label
