"""Thin-lens layered defocus renderer (the embedded default dataset).

Steps for sample ``index`` of a renderer with ``seed`` (papers/synthetic.md):

1. ``rng = np.random.default_rng([seed, index])``: all randomness below comes
   from it, so a sample depends on ``(seed, index, config)`` only.
2. Camera: focal length ``f`` and f-number ``N`` log-uniform in their ranges,
   sensor width ``w_s``; a random layered scene (:mod:`.scene`); focus distance
   ``s_f`` = the depth of a random layer (probability ``focus_on_layer_prob``;
   a random point for a tilted plane) or log-uniform in ``focus_distance_m``.
3. Blur radius per layer, thin lens (:mod:`dbd_lightning.ops.thin_lens`):
   ``r = f^2 |d - s_f| W / (2 N d (s_f - f) w_s)`` px, clipped at
   ``max_radius_frac * W``. A tilted plane's signed radius (affine in 1/d) is
   quantised into at most ``n_depth_bins`` bins of width >= ``radius_step`` px;
   each bin is rendered with its centre radius, and the *rendered* radius is
   the one reported in ``radius``.
4. Occlusion-aware compositing, back to front (Karaali et al.'s blurred-layer
   blending, premultiplied): for each layer with alpha ``a`` and sharp texture
   ``T``, ``C_i = PSF_r * (a T)`` and ``A_i = PSF_r * a`` (same PSF for colour and
   alpha), then ``C <- C_i + (1 - A_i) C``. The depth bins of one tilted plane do
   not occlude one another: their blurred ``(C_i, A_i)`` are summed and the plane
   is normalised by the summed alpha (no dark seams between bins).
5. Optional sensor noise (Gaussian, 8-bit units) and JPEG (``cv2.imencode``).

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

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ...ops.psf import PSF_KINDS, blur_with_psf, kernel_half_size
from ...ops.thin_lens import signed_coc_radius_px
from .scene import SHAPES, Scene, make_scene
from .textures import TextureBank

__all__ = [
    "RenderConfig",
    "PRESETS",
    "get_preset",
    "resolve_config",
    "SyntheticRenderer",
    "focus_boundary",
    "edge_types",
    "SAMPLE_KEYS",
    "sample_name",
]

#: Keys of the dict returned by :meth:`SyntheticRenderer.render`.
SAMPLE_KEYS: tuple[str, ...] = ("image", "mask", "radius", "depth", "dof_edge", "edge_type", "layers")


def sample_name(seed: int, index: int) -> str:
    """Name of sample ``index`` of a dataset with ``seed``: ``synth_<seed>_<index:06d>``."""
    return f"synth_{int(seed)}_{int(index):06d}"


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
        set_(self, "size", _as_size(self.size))
        for f in _RANGE_FIELDS:
            set_(self, f, as_range(f, getattr(self, f)))
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


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    if hi <= lo:
        return float(lo)
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


class SyntheticRenderer:
    """Render deterministic synthetic defocus samples: ``render(index)`` depends on (seed, index).

    Args:
        config: a :class:`RenderConfig` or a preset name (``shallow``, ``wide``, ``random``).
        seed: dataset seed; sample ``i`` uses ``np.random.default_rng([seed, i])``.

    Instances are light and picklable (photos are cached per process).
    """

    def __init__(self, config: RenderConfig | str = "random", seed: int = 0) -> None:
        self.config = resolve_config(config)
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = seed
        self.bank = self.config.texture_bank()

    def __repr__(self) -> str:
        return f"SyntheticRenderer(preset={self.config.name!r}, size={self.config.size}, seed={self.seed})"

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index``."""
        index = int(index)
        if index < 0:
            raise IndexError(f"sample index must be >= 0, got {index}")
        return np.random.default_rng([self.seed, index])

    # ------------------------------------------------------------------ camera
    def _camera(self, rng: np.random.Generator) -> tuple[float, float]:
        cfg = self.config
        f_m = _loguniform(rng, *cfg.focal_length_mm) / 1000.0
        n = _loguniform(rng, *cfg.f_number)
        return f_m, n

    def _focus_distance(self, rng: np.random.Generator, scene: Scene, f_m: float) -> float:
        cfg = self.config
        if rng.random() < cfg.focus_on_layer_prob:
            layer = scene.layers[int(rng.integers(len(scene.layers)))]
            if isinstance(layer.depth_m, np.ndarray):
                h, w = layer.depth_m.shape
                s = float(layer.depth_m[int(rng.integers(h)), int(rng.integers(w))])
            else:
                s = float(layer.depth_m)
        else:
            s = _loguniform(rng, *cfg.focus_distance_m)
        return max(s, 2.0 * f_m)

    # --------------------------------------------------------------- blurring
    def _margin(self, r: float) -> int:
        cfg = self.config
        if r <= 0.5:
            return 0
        extent = r if cfg.psf == "disk" else 4.0 * cfg.gaussian_sigma_per_radius * r + 1.0
        margin = max(kernel_half_size(r), int(math.ceil(extent)))
        if cfg.direct_blur_max_radius is not None and r > cfg.direct_blur_max_radius:
            margin += 2 * 2 ** int(math.ceil(math.log2(r / cfg.direct_blur_max_radius))) + 1
        return margin

    def _blurred_layer(
        self, alpha: np.ndarray | None, texture: np.ndarray, box: tuple[int, int, int, int], r: float
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """Blurred premultiplied colour and alpha of a layer over its box grown by the PSF extent."""
        cfg = self.config
        h, w = cfg.size
        y0, y1, x0, x1 = box
        m = self._margin(r)
        ey0, ey1, ex0, ex1 = max(0, y0 - m), min(h, y1 + m), max(0, x0 - m), min(w, x1 + m)
        # RGBA stack (a T, a); OpenCV channel ops avoid slow numpy broadcasting over RGB
        if alpha is None:
            stack = cv2.cvtColor(texture, cv2.COLOR_RGB2RGBA)  # alpha = 1
        else:
            premult = cv2.multiply(texture, cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB))
            stack = cv2.cvtColor(premult, cv2.COLOR_RGB2RGBA)
            stack[..., 3] = alpha
        pads = (y0 - ey0, ey1 - y1, x0 - ex0, ex1 - x1)
        if any(pads):  # zeros around the layer's box, so its blur can spread there
            stack = cv2.copyMakeBorder(stack, *pads, cv2.BORDER_CONSTANT, value=(0.0, 0.0, 0.0, 0.0))
        if r > 0.5:
            stack = blur_with_psf(
                stack, r, cfg.psf, cfg.gaussian_sigma_per_radius, cfg.direct_blur_max_radius
            )
        return cv2.cvtColor(stack, cv2.COLOR_RGBA2RGB), cv2.extractChannel(stack, 3), (ey0, ey1, ex0, ex1)

    def _plane_bins(self, signed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quantise a signed radius map into bins; returns (bin index map, signed centre per bin)."""
        cfg = self.config
        qmin, qmax = float(signed.min()), float(signed.max())
        span = qmax - qmin
        n = int(min(cfg.n_depth_bins, max(1, math.ceil(span / cfg.radius_step - 1e-9))))
        if span <= 0 or n == 1:
            return np.zeros(signed.shape, np.int32), np.array([0.5 * (qmin + qmax)])
        width = span / n
        idx = np.minimum(((signed - qmin) / np.float32(width)).astype(np.int32), n - 1)
        centres = qmin + (np.arange(n) + 0.5) * width
        return idx, centres

    # ----------------------------------------------------------------- render
    def render(self, index: int) -> dict[str, np.ndarray]:
        """Render sample ``index``: a dict with :data:`SAMPLE_KEYS` (see the module docstring)."""
        return self.render_with_info(index)[0]

    def render_with_info(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """:meth:`render` plus a JSON-friendly dict of the drawn camera and scene parameters."""
        cfg = self.config
        rng = self.rng(index)
        h, w = cfg.size
        f_m, n_f = self._camera(rng)
        scene = make_scene(rng, cfg, self.bank)
        s_f = self._focus_distance(rng, scene, f_m)
        sensor_m = cfg.sensor_width_mm / 1000.0
        r_max = cfg.max_radius_frac * w

        def signed_radius(depth):
            q = signed_coc_radius_px(depth, f_m, n_f, s_f, sensor_m, w)
            return np.clip(q, -r_max, r_max)

        radius = np.empty((h, w), np.float32)

        # --- background: whole image, fronto-parallel or binned tilted plane
        bg = scene.layers[0]
        sharp = bg.texture.copy()  # all-in-focus composite, for the edge labels
        if isinstance(bg.depth_m, np.ndarray):
            idx, centres = self._plane_bins(signed_radius(bg.depth_m).astype(np.float32))
            radii = np.abs(centres).astype(np.float32)
            radius[:] = radii[idx]
            acc_a = np.zeros((h, w), np.float32)
            colour = np.zeros((h, w, 3), np.float32)
            for b in range(len(centres)):
                sel = (idx == b).astype(np.uint8)
                x, y, bw, bh = cv2.boundingRect(sel)
                if bw * bh == 0:
                    continue
                box = (y, y + bh, x, x + bw)
                a = sel[y : y + bh, x : x + bw].astype(np.float32)
                c_i, a_i, (ey0, ey1, ex0, ex1) = self._blurred_layer(
                    a, bg.texture[y : y + bh, x : x + bw], box, float(radii[b])
                )
                colour[ey0:ey1, ex0:ex1] += c_i
                acc_a[ey0:ey1, ex0:ex1] += a_i
            colour = cv2.divide(colour, cv2.cvtColor(np.maximum(acc_a, 1e-6), cv2.COLOR_GRAY2RGB))
            n_bins = len(centres)
        else:
            r_bg = float(abs(signed_radius(bg.depth_m)))
            radius[:] = r_bg
            colour, _, _ = self._blurred_layer(None, bg.texture, bg.box, r_bg)
            n_bins = 1

        # --- foreground objects, far to near, "over" compositing of blurred layers
        obj_radii = []
        for layer in scene.layers[1:]:
            r = float(abs(signed_radius(layer.depth_m)))
            obj_radii.append(r)
            y0, y1, x0, x1 = layer.box
            inside = layer.alpha >= 0.5
            radius[y0:y1, x0:x1][inside] = r
            sharp[y0:y1, x0:x1] = cv2.copyTo(
                layer.texture, inside.view(np.uint8), np.ascontiguousarray(sharp[y0:y1, x0:x1])
            )
            c_i, a_i, (ey0, ey1, ex0, ex1) = self._blurred_layer(layer.alpha, layer.texture, layer.box, r)
            # over: C <- C_i + (1 - A_i) C
            behind = cv2.multiply(colour[ey0:ey1, ex0:ex1], cv2.cvtColor(1.0 - a_i, cv2.COLOR_GRAY2RGB))
            colour[ey0:ey1, ex0:ex1] = cv2.add(behind, c_i)

        image = self._degrade(rng, colour)
        mask = (radius <= cfg.r0).astype(np.uint8)
        dlo, dhi = cfg.depth_range_m
        depth = np.clip((scene.depth_m - np.float32(dlo)) / np.float32(dhi - dlo), 0.0, 1.0).astype(
            np.float32
        )
        sample = {
            "image": image,
            "mask": mask,
            "radius": radius,
            "depth": depth,
            "dof_edge": focus_boundary(mask),
            "edge_type": edge_types(
                scene.labels, radius, sharp, cfg.blur_change_tol, cfg.canny_low, cfg.canny_high
            ),
            "layers": scene.labels,
        }
        info = {
            "index": int(index),
            "seed": self.seed,
            "focal_length_mm": f_m * 1000.0,
            "f_number": n_f,
            "focus_distance_m": s_f,
            "sensor_width_mm": cfg.sensor_width_mm,
            "background": scene.layers[0].shape,
            "depth_bins": n_bins,
            "object_radii_px": obj_radii,
            "sources": [layer.source for layer in scene.layers],
            "shapes": [layer.shape for layer in scene.layers[1:]],
        }
        return sample, info

    def _degrade(self, rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
        """Sensor noise (Gaussian, sigma in 8-bit levels) then 8-bit quantisation and optional JPEG."""
        cfg = self.config
        img = colour * np.float32(255.0)
        if rng.random() < cfg.noise_prob:
            sigma = float(rng.uniform(*cfg.noise_sigma))
            # cv2.randn is ~4x faster than Generator.standard_normal; its (thread-local)
            # RNG is reseeded from ``rng`` so the sample stays a function of (seed, index)
            noise = np.empty_like(img)
            cv2.setRNGSeed(int(rng.integers(2**31 - 1)))
            cv2.randn(noise, (0.0, 0.0, 0.0), (sigma, sigma, sigma))
            img += noise
        img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        if cfg.jpeg_quality is not None and rng.random() < cfg.jpeg_prob:
            q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
            ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
            if not ok:  # pragma: no cover - cv2 always encodes uint8 RGB
                raise RuntimeError("JPEG encoding failed")
            img = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
        return img
