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
   ``max_radius_frac * W``.
4. Radius binning of a tilted plane, occlusion-aware compositing, camera noise / JPEG and
   the labels: the renderer core shared with the photographic scenes (:mod:`.core`).

The returned ground truth is described in :mod:`.labels` (:data:`~.labels.SAMPLE_KEYS`);
the numbers and presets in :mod:`.config`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...ops.thin_lens import signed_coc_radius_px
from .config import PRESETS, RenderConfig, resolve_config
from .core import LayeredRenderer, loguniform
from .scene import Scene, make_scene

__all__ = ["SyntheticRenderer", "sample_name"]

#: the presets of collage scenes (the others are photographic)
COLLAGE_PRESETS = tuple(sorted(name for name, cfg in PRESETS.items() if isinstance(cfg, RenderConfig)))


def sample_name(seed: int, index: int) -> str:
    """Name of sample ``index`` of a dataset with ``seed``: ``synth_<seed>_<index:06d>``."""
    return f"synth_{int(seed)}_{int(index):06d}"


class SyntheticRenderer(LayeredRenderer):
    """Render deterministic synthetic defocus samples: ``render(index)`` depends on (seed, index).

    Args:
        config: a :class:`RenderConfig` or a preset name (``shallow``, ``wide``, ``random``).
        seed: dataset seed; sample ``i`` uses ``np.random.default_rng([seed, i])``.

    Instances are light and picklable (photos are cached per process).
    """

    def __init__(self, config: RenderConfig | str = "random", seed: int = 0) -> None:
        config = resolve_config(config)
        if not isinstance(config, RenderConfig):
            raise ValueError(f"preset {config.name!r} is not a collage scene (valid: {', '.join(COLLAGE_PRESETS)}); "
                             "the photographic scenes render with PhotographicRenderer (data preset=photographic)")
        super().__init__(config, seed)
        self.bank = self.config.texture_bank()

    def __repr__(self) -> str:
        return f"SyntheticRenderer(preset={self.config.name!r}, size={self.config.size}, seed={self.seed})"

    # ------------------------------------------------------------------ camera
    def _camera(self, rng: np.random.Generator) -> tuple[float, float]:
        cfg = self.config
        f_m = loguniform(rng, *cfg.focal_length_mm) / 1000.0
        n = loguniform(rng, *cfg.f_number)
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
            s = loguniform(rng, *cfg.focus_distance_m)
        return max(s, 2.0 * f_m)

    # ----------------------------------------------------------------- render
    def render_with_info(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """:meth:`render` plus a JSON-friendly dict of the drawn camera and scene parameters."""
        cfg = self.config
        rng = self.rng(index)
        w = cfg.size[1]
        f_m, n_f = self._camera(rng)
        scene = make_scene(rng, cfg, self.bank)
        s_f = self._focus_distance(rng, scene, f_m)
        sensor_m = cfg.sensor_width_mm / 1000.0
        r_max = cfg.max_radius_frac * w

        def signed_radius(depth):
            return np.clip(signed_coc_radius_px(depth, f_m, n_f, s_f, sensor_m, w), -r_max, r_max)

        comp = self.composite(scene.layers, signed_radius)
        sample = self.sample(self.degrade(rng, comp.colour), comp, cfg.depth_range_m)
        info = {
            "index": int(index),
            "seed": self.seed,
            "focal_length_mm": f_m * 1000.0,
            "f_number": n_f,
            "focus_distance_m": s_f,
            "sensor_width_mm": cfg.sensor_width_mm,
            "background": scene.layers[0].shape,
            "depth_bins": comp.depth_bins,
            "object_radii_px": comp.object_radii,
            "sources": [layer.source for layer in scene.layers],
            "shapes": [layer.shape for layer in scene.layers[1:]],
        }
        return sample, info
