"""Configs of the synthetic scenes, their presets, and the checks they share.

* :class:`SceneConfig`: the fields both scene kinds read (PSF, radius binning, sources, noise,
  JPEG, edge labels), declared and checked once, with ``replace`` / ``to_dict``.
* :class:`RenderConfig`: all numbers of the collage scenes (:mod:`.renderer`).
* :class:`PhotoSceneConfig`: all numbers of the photographic scenes (:mod:`.photographic`).
* :data:`PRESETS` (both kinds) and :func:`resolve_config` (preset name, config or mapping): the one
  place presets are resolved; the config's type selects the renderer (:func:`.factory.make_renderer`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ...ops.psf import PSF_KINDS
from .photo_pool import SPLITS
from .scene import SHAPES
from .textures import TextureBank

__all__ = [
    "PRESETS",
    "PhotoSceneConfig",
    "REFERENCE_SIZE",
    "RenderConfig",
    "SceneConfig",
    "as_range",
    "get_preset",
    "resolve_config",
]


def _as_size(size: Any) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an int or (H, W), got {size!r}") from None
    if h < 8 or w < 8:
        raise ValueError(f"size must be at least 8x8, got {(h, w)}")
    return h, w


def as_range(name: str, value: Any) -> tuple[float, float]:
    """A config range ``(lo, hi)`` as floats with ``0 <= lo <= hi`` (finite); a clear error naming ``name``."""
    try:
        lo, hi = (float(x) for x in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (lo, hi) pair, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or lo < 0:
        raise ValueError(f"{name} must satisfy 0 <= lo <= hi, got {value!r}")
    return lo, hi


@dataclass(frozen=True)
class SceneConfig:
    """The fields both scene kinds read (declared once here), their checks, ``replace`` and ``to_dict``.

    The blurring, compositing, camera and label code of :mod:`.core` reads only these. A scene kind
    (:class:`RenderConfig`, :class:`PhotoSceneConfig`) adds its own fields and may give a shared field
    another default; ``KIND`` names it in errors, ``RANGES`` lists its ``(lo, hi)`` fields.
    """

    KIND: ClassVar[str] = "config"
    RANGES: ClassVar[tuple[str, ...]] = ("tilt_near_ratio", "noise_sigma")

    size: tuple[int, int] = (320, 320)
    # sharp sources: a folder of photographs and / or the bundled scikit-image photos
    source_dir: str | None = None
    include_bundled_photos: bool = True
    # background: probability of a tilted plane, and its near / far depth ratio
    tilted_prob: float = 0.5
    tilt_near_ratio: tuple[float, float] = (0.15, 0.8)
    # rendering: in focus where radius <= r0 (px); PSF; radius binning of tilted planes
    r0: float = 0.5
    psf: str = "disk"
    gaussian_sigma_per_radius: float = 0.5
    n_depth_bins: int = 16
    radius_step: float = 0.25
    direct_blur_max_radius: float | None = 4.0
    # degradations: Gaussian sensor noise (sigma in 8-bit levels), JPEG
    noise_prob: float = 0.5
    noise_sigma: tuple[float, float] = (0.5, 3.0)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] | None = (70, 95)
    # edge labels (:func:`.labels.edge_types`)
    blur_change_tol: float = 0.25
    canny_low: int = 50
    canny_high: int = 120
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "size", _as_size(self.size))
        for f in self.RANGES:
            set_(self, f, as_range(f, getattr(self, f)))
        self._check_scene()
        if not 0.0 <= float(self.tilted_prob) <= 1.0:
            raise ValueError(f"tilted_prob must be in [0, 1], got {self.tilted_prob!r}")
        if self.psf not in PSF_KINDS:
            raise ValueError(f"unknown psf {self.psf!r}; valid: {', '.join(PSF_KINDS)}")
        for f in ("noise_prob", "jpeg_prob"):
            if not 0.0 <= float(getattr(self, f)) <= 1.0:
                raise ValueError(f"{f} must be in [0, 1], got {getattr(self, f)!r}")
        for f in ("gaussian_sigma_per_radius", "radius_step"):
            if not float(getattr(self, f)) > 0:
                raise ValueError(f"{f} must be > 0, got {getattr(self, f)!r}")
        if self.r0 < 0:
            raise ValueError(f"r0 must be >= 0, got {self.r0!r}")
        if int(self.n_depth_bins) < 1:
            raise ValueError(f"n_depth_bins must be >= 1, got {self.n_depth_bins!r}")
        set_(self, "n_depth_bins", int(self.n_depth_bins))
        if self.direct_blur_max_radius is not None and self.direct_blur_max_radius <= 0.5:
            raise ValueError(f"direct_blur_max_radius must be > 0.5 or None, got {self.direct_blur_max_radius!r}")
        if self.jpeg_quality is not None:
            qlo, qhi = (int(q) for q in self.jpeg_quality)
            if not 1 <= qlo <= qhi <= 100:
                raise ValueError(f"jpeg_quality must be None or 1 <= lo <= hi <= 100, got {self.jpeg_quality!r}")
            set_(self, "jpeg_quality", (qlo, qhi))
        if self.source_dir is not None:
            set_(self, "source_dir", str(self.source_dir))

    def _check_scene(self) -> None:
        """Check (and normalise in place) the scene kind's own fields; ``size`` and ``RANGES`` are done."""

    @property
    def r0_px(self) -> float:
        """The in-focus radius threshold in pixels at ``size``."""
        return float(self.r0)

    def replace(self, **changes: Any):
        """A copy with ``changes`` applied (validated); unknown names list the valid fields."""
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ValueError(f"unknown {self.KIND} field(s) {unknown}; valid: {', '.join(sorted(valid))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (tuples become lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class RenderConfig(SceneConfig):
    """All numbers of the collage scenes (:mod:`.renderer`; defaults = the ``random`` preset).

    Ranges are ``(lo, hi)`` and drawn log-uniformly for lengths and f-numbers,
    uniformly otherwise. Units are in the field names (mm, m, px, 8-bit levels).
    The shared fields (PSF, radius binning, noise, JPEG, labels) are :class:`SceneConfig`'s.
    """

    KIND = "RenderConfig"
    RANGES = (*SceneConfig.RANGES, "focal_length_mm", "f_number", "depth_range_m", "background_depth_m",
              "object_depth_m", "object_size_frac", "focus_distance_m")

    # camera (thin lens)
    focal_length_mm: tuple[float, float] = (18.0, 105.0)
    f_number: tuple[float, float] = (1.4, 22.0)
    sensor_width_mm: float = 36.0
    # scene (metres); depth_range_m is also the normalisation range of ``depth``
    depth_range_m: tuple[float, float] = (0.5, 40.0)
    background_depth_m: tuple[float, float] = (3.5, 40.0)
    n_layers: tuple[int, int] = (1, 3)
    object_depth_m: tuple[float, float] = (0.5, 20.0)
    object_size_frac: tuple[float, float] = (0.2, 0.65)
    min_object_area_frac: float = 0.01
    shapes: tuple[str, ...] = SHAPES
    # focus
    focus_on_layer_prob: float = 0.8
    focus_distance_m: tuple[float, float] = (0.5, 40.0)
    # blur radii are clipped at max_radius_frac * width
    max_radius_frac: float = 0.05
    # textures
    photo_weight: float = 0.55
    noise_weight: float = 0.2
    stripes_weight: float = 0.1
    checkers_weight: float = 0.15
    homogeneous_prob: float = 0.15

    def _check_scene(self) -> None:
        set_ = object.__setattr__
        lo, hi = (int(x) for x in self.n_layers)
        if not 0 <= lo <= hi:
            raise ValueError(f"n_layers must satisfy 0 <= lo <= hi, got {self.n_layers!r}")
        set_(self, "n_layers", (lo, hi))
        for f in (
            "focal_length_mm",
            "f_number",
            "depth_range_m",
            "background_depth_m",
            "object_depth_m",
            "focus_distance_m",
            "tilt_near_ratio",
        ):
            if getattr(self, f)[0] <= 0:
                raise ValueError(f"{f} must be > 0, got {getattr(self, f)!r}")
        if self.tilt_near_ratio[1] > 1:
            raise ValueError(f"tilt_near_ratio must be <= 1, got {self.tilt_near_ratio!r}")
        dlo, dhi = self.depth_range_m
        if dhi <= dlo:
            raise ValueError(f"depth_range_m must have lo < hi, got {self.depth_range_m!r}")
        for f in ("background_depth_m", "object_depth_m"):
            lo, hi = getattr(self, f)
            if lo < dlo or hi > dhi:
                raise ValueError(f"{f} {getattr(self, f)} must lie inside depth_range_m {self.depth_range_m}")
        if self.tilt_near_ratio[0] * self.background_depth_m[0] < dlo * (1 - 1e-9):
            raise ValueError(
                "a tilted plane may come nearer than depth_range_m[0]: need "
                f"tilt_near_ratio[0] * background_depth_m[0] >= {dlo}"
            )
        if self.focus_distance_m[0] * 1000.0 <= self.focal_length_mm[1]:
            raise ValueError("focus_distance_m must exceed the largest focal length")
        if self.depth_range_m[0] * 1000.0 <= self.focal_length_mm[1]:
            raise ValueError("depth_range_m must start beyond the largest focal length")
        shapes = tuple(str(s) for s in self.shapes)
        bad = [s for s in shapes if s not in SHAPES]
        if not shapes or bad:
            raise ValueError(f"shapes must be a non-empty subset of {SHAPES}, got {self.shapes!r}")
        set_(self, "shapes", shapes)
        for f in ("focus_on_layer_prob", "homogeneous_prob"):
            if not 0.0 <= float(getattr(self, f)) <= 1.0:
                raise ValueError(f"{f} must be in [0, 1], got {getattr(self, f)!r}")
        for f in ("sensor_width_mm", "max_radius_frac"):
            if not float(getattr(self, f)) > 0:
                raise ValueError(f"{f} must be > 0, got {getattr(self, f)!r}")
        weights = (self.photo_weight, self.noise_weight, self.stripes_weight, self.checkers_weight)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("texture weights must be >= 0 with a positive sum")

    def texture_bank(self) -> TextureBank:
        """The :class:`TextureBank` described by this config."""
        return TextureBank(
            weights={
                "photo": self.photo_weight,
                "noise": self.noise_weight,
                "stripes": self.stripes_weight,
                "checkers": self.checkers_weight,
            },
            homogeneous_prob=self.homogeneous_prob,
            source_dir=self.source_dir,
            include_bundled_photos=self.include_bundled_photos,
        )


#: The input size at which ``blur_radius_px`` and ``r0`` are given (the papers' 320 px protocol).
REFERENCE_SIZE = 320


@dataclass(frozen=True)
class PhotoSceneConfig(SceneConfig):
    """All numbers of the photographic scenes (:mod:`.photographic`). Radii (``blur_radius_px``,
    ``r0``) are px at ``REFERENCE_SIZE``, scaled with ``size``. The shared fields are
    :class:`SceneConfig`'s; the ones redeclared below only take this scene kind's defaults."""

    KIND = "photographic scene"
    RANGES = (*SceneConfig.RANGES, "blur_radius_px", "depth_range", "background_depth", "subject_depth",
              "subject_area_frac", "midground_area_frac", "highlight_gain", "tone_gamma", "tone_contrast",
              "exposure")

    # this scene kind's defaults of shared fields
    tilted_prob: float = 0.4
    tilt_near_ratio: tuple[float, float] = (0.1, 0.6)
    r0: float = 1.0
    n_depth_bins: int = 12
    radius_step: float = 0.5
    noise_prob: float = 0.6
    jpeg_prob: float = 0.6
    name: str = field(default="photographic", compare=False)
    # photographs: train | val | test | all (disjoint photos per split)
    photo_split: str = "all"
    # blur (px at 320 px): measured on real CUHK / DUT photos, see :mod:`.photographic`
    blur_radius_px: tuple[float, float] = (1.5, 8.0)
    # scene (arbitrary depth units; only ratios matter)
    depth_range: tuple[float, float] = (1.0, 40.0)
    background_depth: tuple[float, float] = (6.0, 40.0)
    midground_prob: float = 0.4
    midground_area_frac: tuple[float, float] = (0.1, 0.35)
    n_subjects: tuple[int, int] = (1, 2)
    subject_depth: tuple[float, float] = (1.0, 4.0)
    subject_area_frac: tuple[float, float] = (0.08, 0.45)
    subject_shift_frac: float = 0.2
    # focus
    focus_subject_prob: float = 0.75
    focus_background_prob: float = 0.15
    all_sharp_prob: float = 0.03
    # highlights and camera
    highlight_prob: float = 0.5
    highlight_count: tuple[int, int] = (3, 25)
    highlight_gain: tuple[float, float] = (3.0, 12.0)
    exposure: tuple[float, float] = (0.8, 1.25)
    tone_gamma: tuple[float, float] = (2.0, 2.4)
    tone_contrast: tuple[float, float] = (0.0, 0.3)

    def _check_scene(self) -> None:
        set_ = object.__setattr__
        for f in ("n_subjects", "highlight_count"):
            lo, hi = (int(x) for x in getattr(self, f))
            if not 0 <= lo <= hi:
                raise ValueError(f"{f} must satisfy 0 <= lo <= hi, got {getattr(self, f)!r}")
            set_(self, f, (lo, hi))
        if self.n_subjects[1] < 1:
            raise ValueError("n_subjects must allow at least one subject")
        if self.photo_split not in SPLITS:
            raise ValueError(f"photo_split must be one of {SPLITS}, got {self.photo_split!r}")
        for f in ("midground_prob", "focus_subject_prob", "focus_background_prob", "all_sharp_prob",
                  "highlight_prob"):
            if not 0.0 <= float(getattr(self, f)) <= 1.0:
                raise ValueError(f"{f} must be in [0, 1], got {getattr(self, f)!r}")
        if self.focus_subject_prob + self.focus_background_prob > 1.0:
            raise ValueError("focus_subject_prob + focus_background_prob must be <= 1")
        if self.blur_radius_px[0] <= self.r0:
            raise ValueError(f"blur_radius_px {self.blur_radius_px} must start above r0={self.r0}")
        if self.depth_range[0] <= 0 or self.subject_depth[0] < self.depth_range[0] or (
            self.background_depth[1] > self.depth_range[1]
        ):
            raise ValueError("subject_depth and background_depth must lie inside depth_range (> 0)")
        if self.subject_depth[1] >= self.background_depth[0]:
            raise ValueError("subject_depth must end before background_depth starts")

    @property
    def scale(self) -> float:
        """Pixels per reference pixel: radii scale with the output width."""
        return self.size[1] / REFERENCE_SIZE

    @property
    def r0_px(self) -> float:
        """``r0`` in pixels at ``size``."""
        return self.r0 * self.scale


#: Named presets. Collage scenes (:class:`RenderConfig`): ``shallow``: strong bokeh (f/1.4-2.8,
#: 35-105 mm, like EBD's f/1.8 shots); ``wide``: (almost) everything in focus (f/11-22, 16-35 mm,
#: like EBD's f/16 shots); ``random``: broad ranges (18-105 mm, f/1.4-22) mixing both.
#: ``photographic``: the photographic scenes (:class:`PhotoSceneConfig`).
PRESETS: dict[str, SceneConfig] = {
    "random": RenderConfig(name="random"),
    "shallow": RenderConfig(
        name="shallow",
        focal_length_mm=(35.0, 105.0),
        f_number=(1.4, 2.8),
        focus_on_layer_prob=0.95,
    ),
    "wide": RenderConfig(
        name="wide",
        focal_length_mm=(16.0, 35.0),
        f_number=(11.0, 22.0),
        background_depth_m=(5.0, 40.0),
        object_depth_m=(0.6, 20.0),
        focus_distance_m=(1.0, 40.0),
    ),
    "photographic": PhotoSceneConfig(),
}


def get_preset(name: str, **overrides: Any) -> SceneConfig:
    """The preset ``name`` (``shallow``, ``wide``, ``random``, ``photographic``) with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]


def resolve_config(
    preset: str | SceneConfig | Mapping[str, Any] = "random",
    size: int | Sequence[int] | None = None,
    **overrides: Any,
) -> SceneConfig:
    """The config of a preset name, a config (either scene kind), or a mapping of fields.

    A mapping may name a base preset under ``preset`` (default ``random``); ``size`` and
    ``overrides`` are applied last. The type of the result selects the scene kind.
    """
    if isinstance(preset, SceneConfig):
        cfg = preset
    elif isinstance(preset, str):
        cfg = get_preset(preset)
    elif isinstance(preset, Mapping):
        fields_ = dict(preset)
        base = fields_.pop("preset", "random")
        cfg = get_preset(base).replace(**fields_)
    else:
        raise TypeError(f"preset must be a name, scene config or mapping, got {type(preset).__name__}")
    if size is not None:
        overrides["size"] = size
    return cfg.replace(**overrides) if overrides else cfg
