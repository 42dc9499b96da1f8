"""The inference settings: how a photo is resized, cut into tiles and fused before the network sees it.

One frozen object, :class:`InferenceSettings`, holds every geometry / fusion setting of predict and
eval (``image_size``, ``infer.*``, ``tile.*``: the ``conf/inference/`` group, whose YAML states the
defaults written here; ``tests/test_inference_settings.py`` keeps both equal). Every predictor
(:class:`~.image_predictor.ImagePredictor` and its torch / onnxruntime subclasses) takes it.

From a config: ``InferenceSettings.from_mapping(cfg)`` checks every value up front and raises a
:class:`~dbd_lightning.utils.errors.ConfigError` (a ``ValueError``) naming the full key and the fix,
e.g. ``tile.batch must be a whole number >= 1 ..., got 'abc'``. From Python: construct it
(``InferenceSettings(image_size=(320, 320), tile=TileSettings(mode=False))``, checked the same way),
pass a nested mapping in the config's layout wherever settings are taken
(``{"infer": {"mode": "scale", "scale": 0.5}}``), or derive one with
:meth:`InferenceSettings.updated` / :func:`dataclasses.replace`.

One overlap unit: both overlaps are a **fraction of the tile side** (``tile.overlap``: of
``tile.size``, the tiles ``infer.mode=resize`` cuts from very large images; ``infer.overlap``: of
the ``infer.mode=tile`` tiles, ``image_size / infer.scale`` native pixels). A fraction stays valid
for every tile size (pixels had to stay below a side set by another key, and the ``tile`` mode's
side changes with ``infer.scale`` and ``image_size``), so it is checked on its own, up front. The
pixels are ``round(fraction * side)``: ``tile.overlap=0.2`` of ``tile.size=640`` is the 128 pixels
``tile.overlap`` used to give, so the default tiles are unchanged. A pixel value (>= 1) is refused
with the fraction that replaces it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..utils.errors import ConfigError
from .modes import INFER_MODES
from .tiling import WINDOWS

#: ``tile.mode`` values: tile images whose long side exceeds ``tile.above`` / always / never
TILE_MODES = ("auto", True, False)


def overlap_pixels(fraction: float, side: int) -> int:
    """Pixels of an overlap given as a fraction of the tile side (the one overlap unit)."""
    return round(float(fraction) * int(side))


def _shown(value) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _whole(key: str, value, low: int, what: str, example: int) -> int:
    """``value`` as an int >= ``low`` (a float with a whole value counts), else a :class:`ConfigError`."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value and value >= low \
        and float(value).is_integer()
    if not ok:
        raise ConfigError(f"{key} must be a whole number >= {low} ({what}, e.g. {key}={example}), "
                          f"got {_shown(value)}")
    return int(value)


def _number(key: str, value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a number ({what}), got {_shown(value)}")
    return float(value)


def _fraction(key: str, value, side_key: str, side: int | None, default: float) -> float:
    """An overlap: a fraction of the tile side in [0, 0.5); a pixel count (>= 1) is refused with its fraction."""
    what = f"a fraction of the tile side in [0, 0.5), e.g. {key}={default:g}"
    number = _number(key, value, what)
    if 0 <= number < 0.5:
        return number
    hint = ""
    if number >= 1 and side and number / side < 0.5:
        hint = (f"; it is no longer given in pixels: {number:g} px of {side_key}={side} is "
                f"{key}={number / side:.4g}")
    raise ConfigError(f"{key} must be {what}, got {_shown(value)}{hint}")


def _switch(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {_shown(value)}")
    return value


def _choice(key: str, value, choices: tuple, what: str):
    if not any(type(value) is type(c) and value == c for c in choices):  # 1 is not true, 'true' is not true
        shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)
        raise ConfigError(f"{key}={_shown(value)} is not {what}; use one of {shown}")
    return value


def _image_size(value) -> tuple[int, int] | None:
    """``image_size``: null, one positive whole number (a square) or ``[height, width]``."""
    if value is None:
        return None
    values = [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
    try:
        values = list(values) if not isinstance(values, str | bytes | Mapping) else None
    except TypeError:
        values = None
    fine = values is not None and 1 <= len(values) <= 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and v >= 1 and float(v).is_integer() for v in values)
    if not fine:
        raise ConfigError(f"image_size must be null (the run's data.image_size), one positive whole number or "
                          f"[height,width] (e.g. 'image_size=[320,320]'), got {_shown(value)}")
    h, w = (int(values[0]), int(values[-1]))
    return h, w


def _fusion_scales(value) -> tuple[float, ...]:
    """``infer.fusion_scales``: one positive number or a non-empty list of them."""
    values = [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
    try:
        values = list(values) if not isinstance(values, str | bytes | Mapping) else []
    except TypeError:
        values = []
    if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf
                             for v in values):
        raise ConfigError(f"infer.fusion_scales must be a list of positive numbers (e.g. infer.fusion_scales=[1.0] "
                          f"or [0.75,1.0,1.25]), got {_shown(value)}")
    return tuple(float(v) for v in values)


def _set(obj, name: str, value) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass's own field in __post_init__


@dataclass(frozen=True)
class InferSettings:
    """``infer.*``: what the network sees (:mod:`.modes`) and test-time fusion.

    Attributes:
        mode: ``resize`` (the whole image resized to ``image_size``; ``tile.*`` may tile very large
            images) | ``scale`` (the whole image resized by ``scale``) | ``tile`` (tiles of
            ``image_size / scale`` native pixels, each resized to ``image_size``).
        scale: pixel scale of the ``scale`` / ``tile`` modes (1.0 = native pixels, 0.5 = half size).
        overlap: ``tile`` mode: overlap of neighbouring tiles, a fraction of the tile side (< 0.5).
        flip: test-time fusion: also the mirrored image, maps averaged (2x the forwards).
        fusion_scales: test-time fusion: the network input times each factor, maps averaged.
    """

    mode: str = "resize"
    scale: float = 1.0
    overlap: float = 0.25
    flip: bool = False
    fusion_scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str) or self.mode not in INFER_MODES:
            raise ConfigError(f"infer.mode={_shown(self.mode)} is not a mode; use one of {', '.join(INFER_MODES)}"
                              " (eval also takes a list, e.g. infer.mode=[resize,tile]: one row per mode)")
        scale = _number("infer.scale", self.scale, "1.0 = native pixels, 0.5 = half size")
        if not scale > 0:
            raise ConfigError(f"infer.scale must be > 0 (1.0 = native pixels, 0.5 = half size), got {_shown(self.scale)}")
        _set(self, "scale", scale)
        _set(self, "overlap", _fraction("infer.overlap", self.overlap, "", None, 0.25))
        _set(self, "flip", _switch("infer.flip", self.flip))
        _set(self, "fusion_scales", _fusion_scales(self.fusion_scales))


@dataclass(frozen=True)
class TileSettings:
    """``tile.*``: the tiles ``infer.mode=resize`` cuts from very large images, and how every tiled mode runs
    and blends its tiles (``batch``, ``window``; :mod:`.tiling`).

    Attributes:
        mode: ``"auto"`` (tile images whose long side exceeds ``above``), ``True`` (always), ``False`` (never:
            the whole image resized, the papers' protocol).
        above: long side (pixels) above which ``auto`` tiles.
        size: tile side at native resolution (each tile is resized to ``image_size``).
        overlap: overlap of neighbouring tiles, a fraction of ``size`` (< 0.5; 0.2 = 128 px of 640).
        batch: tiles per forward pass (also in ``infer.mode=tile``).
        window: blending of overlaps (also in ``infer.mode=tile``): ``hann`` (seamless) | ``linear`` (ramps).
    """

    mode: str | bool = "auto"
    above: int = 1280
    size: int = 640
    overlap: float = 0.2
    batch: int = 4
    window: str = "hann"

    def __post_init__(self) -> None:
        _choice("tile.mode", self.mode, TILE_MODES, "a tiling mode (auto: above tile.above, true: always, "
                "false: never)")
        _set(self, "above", _whole("tile.above", self.above, 0, "long side in pixels above which tile.mode=auto "
                                   "tiles", 1280))
        _set(self, "size", _whole("tile.size", self.size, 1, "tile side in native pixels", 640))
        _set(self, "overlap", _fraction("tile.overlap", self.overlap, "tile.size", self.size, 0.2))
        _set(self, "batch", _whole("tile.batch", self.batch, 1, "tiles per forward pass", 4))
        _choice("tile.window", self.window, WINDOWS, "a blending window")


@dataclass(frozen=True)
class InferenceSettings:
    """Every geometry / fusion setting of a predictor (module docstring); the defaults are predict's.

    Attributes:
        image_size: network input ``(h, w)``; ``None``: the run's ``data.image_size`` when built from a run
            (``CheckpointPredictor.from_run``, predict, eval), the native size rounded to the network's stride
            for a bare network.
        infer: :class:`InferSettings` (``infer.*``).
        tile: :class:`TileSettings` (``tile.*``).
    """

    image_size: tuple[int, int] | None = None
    infer: InferSettings = field(default_factory=InferSettings)
    tile: TileSettings = field(default_factory=TileSettings)

    def __post_init__(self) -> None:
        _set(self, "image_size", _image_size(self.image_size))
        for name, kind in (("infer", InferSettings), ("tile", TileSettings)):
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"{name} must be a {kind.__name__} (or pass a mapping to "
                                  f"InferenceSettings.from_mapping), got {type(getattr(self, name)).__name__}")

    # ------------------------------------------------------------- building
    @classmethod
    def from_mapping(cls, values: Mapping | None = None, mode: str | None = None,
                     strict: bool = False) -> InferenceSettings:
        """Settings from a config mapping (a whole predict / eval config, or a part of one).

        ``image_size``, ``infer`` and ``tile`` are read (a missing key keeps its default); any other top-level
        key is ignored unless ``strict``. ``mode`` replaces ``infer.mode`` (eval's list: one settings per
        mode). A bad value raises :class:`~dbd_lightning.utils.errors.ConfigError` naming the full key.
        """
        values = _settings_part(values)
        if strict:
            unknown = sorted(set(values) - {"image_size", "infer", "tile"})
            if unknown:
                raise ConfigError(f"unknown inference setting(s) {unknown}; the settings are image_size, infer.* "
                                  "and tile.* (conf/inference/default.yaml documents each)")
        infer = _block(values, "infer", InferSettings)
        if mode is not None:
            infer["mode"] = mode
        elif isinstance(infer.get("mode"), list | tuple):
            raise ConfigError(f"infer.mode={_shown(infer['mode'])}: one mode here (only eval takes a list, one "
                              f"table row per mode); use one of {', '.join(INFER_MODES)}")
        tile = _block(values, "tile", TileSettings)
        return cls(image_size=values.get("image_size"), infer=InferSettings(**infer), tile=TileSettings(**tile))

    @classmethod
    def papers_protocol(cls, image_size=None) -> InferenceSettings:
        """The papers' test protocol: the whole image resized to ``image_size``, never tiled
        (``conf/inference/papers.yaml``, eval's default)."""
        return cls(image_size=image_size, tile=TileSettings(mode=False))

    def updated(self, overrides: Mapping) -> InferenceSettings:
        """A copy with ``overrides`` (the config's nested layout, e.g. ``{"tile": {"mode": False}}``) merged in."""
        merged = self.as_mapping()
        for key, value in _plain(overrides).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return InferenceSettings.from_mapping(merged, strict=True)

    def as_mapping(self) -> dict:
        """The settings in the config's layout (lists, not tuples): ``conf/inference/default.yaml``'s shape."""
        def plain(v):
            return [plain(x) for x in v] if isinstance(v, tuple) else {k: plain(x) for k, x in v.items()} \
                if isinstance(v, dict) else v

        return plain(dataclasses.asdict(self))

    # ------------------------------------------------------------ reading
    @property
    def label(self) -> str:
        """Short name of the mode for table rows: ``resize``, ``scale 0.5``, ``tile 1``, with test-time fusion
        ``resize +flip x0.75,1,1.25``."""
        infer = self.infer
        label = infer.mode if infer.mode == "resize" else f"{infer.mode} {infer.scale:g}"
        if infer.flip:
            label += " +flip"
        if infer.fusion_scales != (1.0,):
            label += " x" + ",".join(f"{s:g}" for s in infer.fusion_scales)
        return label


def as_settings(value: InferenceSettings | Mapping | None) -> InferenceSettings:
    """What a predictor takes as ``settings``: the object itself, a mapping in the config's layout
    (checked strictly), or ``None`` for the defaults."""
    if value is None:
        return InferenceSettings()
    if isinstance(value, InferenceSettings):
        return value
    if isinstance(value, Mapping) or type(value).__name__ == "DictConfig":
        return InferenceSettings.from_mapping(value, strict=True)
    raise TypeError(f"settings must be an InferenceSettings or a mapping like {{'tile': {{'mode': False}}}}, "
                    f"got {type(value).__name__}")


def infer_modes(cfg: Mapping) -> list[str]:
    """``infer.mode`` as a list (eval accepts several: one table row per mode), each checked."""
    node = _settings_part(cfg).get("infer")
    mode = node.get("mode", "resize") if isinstance(node, Mapping) else "resize"
    modes = list(mode) if isinstance(mode, list | tuple) else [mode]
    for m in modes:
        if not isinstance(m, str) or m not in INFER_MODES:
            raise ConfigError(f"infer.mode={_shown(m)} is not a mode; use one of {', '.join(INFER_MODES)}")
    if not modes:
        raise ConfigError(f"infer.mode=[] names no mode; use one of {', '.join(INFER_MODES)}")
    return modes


def settings_per_mode(cfg: Mapping) -> list[InferenceSettings]:
    """One :class:`InferenceSettings` per ``infer.mode`` of an eval config (a single mode: a list of one)."""
    return [InferenceSettings.from_mapping(cfg, mode=m) for m in infer_modes(cfg)]


def int8_settings(cfg: Mapping):
    """``int8:`` (``backend=onnxruntime_int8``) as :class:`~.quantize.Int8Settings`; a bad key is a user error."""
    from .quantize import Int8Settings

    try:
        return Int8Settings.from_mapping(_plain(cfg.get("int8")) or {})
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def check_inference_config(cfg: Mapping) -> None:
    """The up-front check of a predict / eval config (``precompose``'s): every inference setting of every mode
    and ``int8.*``, before anything is loaded or written."""
    settings_per_mode(cfg)
    int8_settings(cfg)


def _block(values: Mapping, name: str, kind: type) -> dict:
    """The ``name`` block of ``values`` as a dict of ``kind``'s fields; an unknown key is a :class:`ConfigError`."""
    block = values.get(name)
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise ConfigError(f"{name} must be a block of settings ({name}.<key>=...), got {_shown(block)}")
    known = [f.name for f in dataclasses.fields(kind)]
    unknown = sorted(str(k) for k in block if k not in known)
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]} is not a setting; the {name}.* keys are {', '.join(known)}")
    return dict(block)


def _settings_part(values) -> dict:
    """``image_size`` / ``infer`` / ``tile`` (and any other top-level key, unresolved) of a config mapping as plain
    values; only these are resolved, so a whole predict / eval config (``${hydra:...}`` paths) can be passed."""
    if values is None:
        return {}
    if not (isinstance(values, Mapping) or type(values).__name__ == "DictConfig"):
        raise ConfigError(f"inference settings must be a mapping with image_size / infer / tile, got "
                          f"{type(values).__name__}")
    return {k: (_plain(values.get(k)) if k in ("image_size", "infer", "tile") else None) for k in values}


def _plain(values):
    """A DictConfig / ListConfig (resolved) as plain dicts and lists; anything else unchanged."""
    if type(values).__name__ in ("DictConfig", "ListConfig"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(values, resolve=True)
    return values
