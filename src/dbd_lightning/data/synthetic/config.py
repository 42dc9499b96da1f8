"""Configs of the synthetic scenes and the checks they share.

* :class:`RenderConfig`: all numbers of the collage scenes (:mod:`.renderer`), its
  named :data:`PRESETS` and :func:`resolve_config` (preset name, config or mapping).
* :class:`PhotoSceneConfig`: all numbers of the photographic scenes (:mod:`.photographic`).
* :func:`check_rendering_fields` / :class:`ConfigFields`: the validation of the fields the
  shared blurring, compositing and camera code reads, and ``replace`` / ``to_dict``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...ops.psf import PSF_KINDS
from .photo_pool import SPLITS
from .scene import SHAPES
from .textures import TextureBank

__all__ = [
    "ConfigFields",
    "PRESETS",
    "PhotoSceneConfig",
    "REFERENCE_SIZE",
    "RenderConfig",
    "as_range",
    "check_rendering_fields",
    "get_preset",
    "resolve_config",
]

_RANGE_FIELDS = (
    "focal_length_mm",
    "f_number",
    "depth_range_m",
    "background_depth_m",
    "tilt_near_ratio",
    "object_depth_m",
    "object_size_frac",
    "focus_distance_m",
    "noise_sigma",
)


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


def check_rendering_fields(cfg: Any) -> None:
    """Check (and normalise in place) the fields that :class:`SyntheticRenderer`'s blurring, compositing
    and camera code reads: ``r0``, ``psf``, ``gaussian_sigma_per_radius``, ``radius_step``,
    ``n_depth_bins``, ``direct_blur_max_radius``, ``noise_prob``, ``jpeg_prob``, ``jpeg_quality``,
    ``source_dir``. Both scene kinds (:class:`RenderConfig`, the photographic scenes' config) call it."""
    set_ = object.__setattr__
    if cfg.psf not in PSF_KINDS:
        raise ValueError(f"unknown psf {cfg.psf!r}; valid: {', '.join(PSF_KINDS)}")
    for f in ("noise_prob", "jpeg_prob"):
        if not 0.0 <= float(getattr(cfg, f)) <= 1.0:
            raise ValueError(f"{f} must be in [0, 1], got {getattr(cfg, f)!r}")
    for f in ("gaussian_sigma_per_radius", "radius_step"):
        if not float(getattr(cfg, f)) > 0:
            raise ValueError(f"{f} must be > 0, got {getattr(cfg, f)!r}")
    if cfg.r0 < 0:
        raise ValueError(f"r0 must be >= 0, got {cfg.r0!r}")
    if int(cfg.n_depth_bins) < 1:
        raise ValueError(f"n_depth_bins must be >= 1, got {cfg.n_depth_bins!r}")
    set_(cfg, "n_depth_bins", int(cfg.n_depth_bins))
    if cfg.direct_blur_max_radius is not None and cfg.direct_blur_max_radius <= 0.5:
        raise ValueError(f"direct_blur_max_radius must be > 0.5 or None, got {cfg.direct_blur_max_radius!r}")
    if cfg.jpeg_quality is not None:
        qlo, qhi = (int(q) for q in cfg.jpeg_quality)
        if not 1 <= qlo <= qhi <= 100:
            raise ValueError(f"jpeg_quality must be None or 1 <= lo <= hi <= 100, got {cfg.jpeg_quality!r}")
        set_(cfg, "jpeg_quality", (qlo, qhi))
    if cfg.source_dir is not None:
        set_(cfg, "source_dir", str(cfg.source_dir))


class ConfigFields:
    """``replace`` and ``to_dict`` of the renderers' frozen config dataclasses (``KIND`` names them in errors)."""

    KIND = "config"

    def replace(self, **changes: Any):
        """A copy with ``changes`` applied (validated); unknown names list the valid fields."""
        valid = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ValueError(f"unknown {self.KIND} field(s) {unknown}; valid: {', '.join(sorted(valid))}")
        return dataclasses.replace(self, **changes)

    def _normalise_size_and_ranges(self, ranges: Sequence[str]) -> None:
        """``size`` as ``(H, W)`` and each field of ``ranges`` as a checked ``(lo, hi)`` float pair, in place."""
        object.__setattr__(self, "size", _as_size(self.size))
        for f in ranges:
            object.__setattr__(self, f, as_range(f, getattr(self, f)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (tuples become lists)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class RenderConfig(ConfigFields):
    """All numbers of the synthetic renderer (defaults = the ``random`` preset).

    Ranges are ``(lo, hi)`` and drawn log-uniformly for lengths and f-numbers,
    uniformly otherwise. Units are in the field names (mm, m, px, 8-bit levels).
    """

    KIND = "RenderConfig"

    size: tuple[int, int] = (320, 320)
    # camera (thin lens)
    focal_length_mm: tuple[float, float] = (18.0, 105.0)
    f_number: tuple[float, float] = (1.4, 22.0)
    sensor_width_mm: float = 36.0
    # scene (metres); depth_range_m is also the normalisation range of ``depth``
    depth_range_m: tuple[float, float] = (0.5, 40.0)
    background_depth_m: tuple[float, float] = (3.5, 40.0)
    tilted_prob: float = 0.5
    tilt_near_ratio: tuple[float, float] = (0.15, 0.8)
    n_layers: tuple[int, int] = (1, 3)
    object_depth_m: tuple[float, float] = (0.5, 20.0)
    object_size_frac: tuple[float, float] = (0.2, 0.65)
    min_object_area_frac: float = 0.01
    shapes: tuple[str, ...] = SHAPES
    # focus
    focus_on_layer_prob: float = 0.8
    focus_distance_m: tuple[float, float] = (0.5, 40.0)
    # rendering
    r0: float = 0.5
    psf: str = "disk"
    gaussian_sigma_per_radius: float = 0.5
    max_radius_frac: float = 0.05
    n_depth_bins: int = 16
    radius_step: float = 0.25
    direct_blur_max_radius: float | None = 4.0
    # degradations
    noise_prob: float = 0.5
    noise_sigma: tuple[float, float] = (0.5, 3.0)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] | None = (70, 95)
    # textures
    photo_weight: float = 0.55
    noise_weight: float = 0.2
    stripes_weight: float = 0.1
    checkers_weight: float = 0.15
    homogeneous_prob: float = 0.15
    source_dir: str | None = None
    include_bundled_photos: bool = True
    # edge labels
    blur_change_tol: float = 0.25
    canny_low: int = 50
    canny_high: int = 120
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        self._normalise_size_and_ranges(_RANGE_FIELDS)
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
        for f in ("tilted_prob", "focus_on_layer_prob", "homogeneous_prob"):
            if not 0.0 <= float(getattr(self, f)) <= 1.0:
                raise ValueError(f"{f} must be in [0, 1], got {getattr(self, f)!r}")
        for f in ("sensor_width_mm", "max_radius_frac"):
            if not float(getattr(self, f)) > 0:
                raise ValueError(f"{f} must be > 0, got {getattr(self, f)!r}")
        check_rendering_fields(self)
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


#: Named presets. ``shallow``: strong bokeh (f/1.4-2.8, 35-105 mm, like EBD's
#: f/1.8 shots); ``wide``: (almost) everything in focus (f/11-22, 16-35 mm, like
#: EBD's f/16 shots); ``random``: broad ranges (18-105 mm, f/1.4-22) mixing both.
PRESETS: dict[str, RenderConfig] = {
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
}


def get_preset(name: str, **overrides: Any) -> RenderConfig:
    """The preset ``name`` (``shallow``, ``wide``, ``random``) with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(sorted(PRESETS))}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]


def resolve_config(
    preset: str | RenderConfig | Mapping[str, Any] = "random",
    size: int | Sequence[int] | None = None,
    **overrides: Any,
) -> RenderConfig:
    """A :class:`RenderConfig` from a preset name, a config, or a mapping of fields.

    A mapping may name a base preset under ``preset``; ``size`` and ``overrides``
    are applied last.
    """
    if isinstance(preset, RenderConfig):
        cfg = preset
    elif isinstance(preset, str):
        cfg = get_preset(preset)
    elif isinstance(preset, Mapping):
        fields_ = dict(preset)
        base = fields_.pop("preset", "random")
        cfg = get_preset(base).replace(**fields_)
    else:
        raise TypeError(f"preset must be a name, RenderConfig or mapping, got {type(preset).__name__}")
    if size is not None:
        overrides["size"] = size
    return cfg.replace(**overrides) if overrides else cfg


#: The input size at which ``blur_radius_px`` and ``r0`` are given (the papers' 320 px protocol).
REFERENCE_SIZE = 320

_RANGES = (
    "blur_radius_px", "depth_range", "background_depth", "subject_depth", "subject_area_frac",
    "midground_area_frac", "tilt_near_ratio", "highlight_gain", "tone_gamma", "tone_contrast",
    "exposure", "noise_sigma",
)


@dataclass(frozen=True)
class PhotoSceneConfig(ConfigFields):
    """All numbers of the photographic scenes. Radii are px at ``REFERENCE_SIZE`` (scaled with ``size``)."""

    KIND = "photographic scene"

    size: tuple[int, int] = (320, 320)
    photo_split: str = "all"  # train | val | test | all (disjoint photos per split)
    source_dir: str | None = None
    include_bundled_photos: bool = True
    # blur (px at 320 px): measured on real CUHK / DUT photos, see the module docstring
    blur_radius_px: tuple[float, float] = (1.5, 8.0)
    r0: float = 1.0
    psf: str = "disk"
    gaussian_sigma_per_radius: float = 0.5
    direct_blur_max_radius: float | None = 4.0
    n_depth_bins: int = 12
    radius_step: float = 0.5
    # scene (arbitrary depth units; only ratios matter)
    depth_range: tuple[float, float] = (1.0, 40.0)
    background_depth: tuple[float, float] = (6.0, 40.0)
    tilted_prob: float = 0.4
    tilt_near_ratio: tuple[float, float] = (0.1, 0.6)
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
    noise_prob: float = 0.6
    noise_sigma: tuple[float, float] = (0.5, 3.0)
    jpeg_prob: float = 0.6
    jpeg_quality: tuple[int, int] | None = (70, 95)
    # edge labels
    blur_change_tol: float = 0.25
    canny_low: int = 50
    canny_high: int = 120
    name: str = field(default="photographic", compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        self._normalise_size_and_ranges(_RANGES)
        for f in ("n_subjects", "highlight_count"):
            lo, hi = (int(x) for x in getattr(self, f))
            if not 0 <= lo <= hi:
                raise ValueError(f"{f} must satisfy 0 <= lo <= hi, got {getattr(self, f)!r}")
            set_(self, f, (lo, hi))
        if self.n_subjects[1] < 1:
            raise ValueError("n_subjects must allow at least one subject")
        if self.photo_split not in SPLITS:
            raise ValueError(f"photo_split must be one of {SPLITS}, got {self.photo_split!r}")
        for f in ("tilted_prob", "midground_prob", "focus_subject_prob", "focus_background_prob",
                  "all_sharp_prob", "highlight_prob"):
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
        check_rendering_fields(self)  # the blurring / compositing / camera code shared with the collage scenes

    @property
    def scale(self) -> float:
        """Pixels per reference pixel: radii scale with the output width."""
        return self.size[1] / REFERENCE_SIZE
