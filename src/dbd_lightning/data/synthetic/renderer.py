"""Thin-lens layered defocus renderer (the embedded default dataset).

Steps for sample ``index`` of a renderer with ``seed``:

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

The returned ground truth is described in :mod:`.labels` (:data:`~.labels.SAMPLE_KEYS`);
the numbers and presets in :mod:`.config`.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from ...ops.psf import blur_with_psf, kernel_half_size
from ...ops.thin_lens import signed_coc_radius_px
from .config import RenderConfig, resolve_config
from .labels import edge_types, focus_boundary
from .scene import Scene, make_scene

__all__ = ["SyntheticRenderer", "sample_name"]


def sample_name(seed: int, index: int) -> str:
    """Name of sample ``index`` of a dataset with ``seed``: ``synth_<seed>_<index:06d>``."""
    return f"synth_{int(seed)}_{int(index):06d}"


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
    def _binned_plane(self, idx: np.ndarray, radii: np.ndarray, texture: np.ndarray) -> np.ndarray:
        """Colour of a tilted plane whose pixels fall in radius bins ``idx`` (bin ``b`` blurred with
        ``radii[b]``): the bins do not occlude one another, their blurred colour and alpha are summed
        and the plane is normalised by the summed alpha (no dark seams between bins)."""
        h, w = idx.shape
        acc_a = np.zeros((h, w), np.float32)
        colour = np.zeros((h, w, 3), np.float32)
        for b in range(len(radii)):
            sel = (idx == b).astype(np.uint8)
            x, y, bw, bh = cv2.boundingRect(sel)
            if bw * bh == 0:
                continue
            box = (y, y + bh, x, x + bw)
            a = sel[y : y + bh, x : x + bw].astype(np.float32)
            c_i, a_i, (ey0, ey1, ex0, ex1) = self._blurred_layer(a, texture[y : y + bh, x : x + bw], box,
                                                                 float(radii[b]))
            colour[ey0:ey1, ex0:ex1] += c_i
            acc_a[ey0:ey1, ex0:ex1] += a_i
        return cv2.divide(colour, cv2.cvtColor(np.maximum(acc_a, 1e-6), cv2.COLOR_GRAY2RGB))

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
            colour = self._binned_plane(idx, radii, bg.texture)
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
