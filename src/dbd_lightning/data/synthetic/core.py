"""The renderer core both scene kinds use: radius maps, blurred-layer compositing, camera and labels.

A scene kind (:class:`.renderer.SyntheticRenderer`, :class:`.photographic.PhotographicRenderer`)
draws its layers (:class:`.scene.Layer`, back to front, label 0 = the background) and a
``signed_radius(depth)`` function (its camera model); :class:`LayeredRenderer` does the rest:

1. **Radii.** A fronto-parallel layer is blurred with ``|signed_radius(depth)|``. A tilted
   background (a depth map) has its signed radius quantised into at most ``n_depth_bins`` bins of
   width >= ``radius_step`` px; each bin is rendered with its centre radius, and the *rendered*
   radius is the one reported in ``radius``.
2. **Compositing**, back to front (Karaali et al.'s blurred-layer blending, premultiplied): for a
   layer with alpha ``a`` and texture ``T``, ``C_i = PSF_r * (a T)`` and ``A_i = PSF_r * a`` (same
   PSF for colour and alpha), then ``C <- C_i + (1 - A_i) C``. The depth bins of one tilted plane
   do not occlude one another: their blurred ``(C_i, A_i)`` are summed and the plane is normalised
   by the summed alpha (no dark seams between bins). Alongside: the visible radius, layer label
   and depth maps, and the all-in-focus composite (for the edge labels).
3. **Camera**: Gaussian sensor noise, 8-bit quantisation, optional JPEG (:meth:`degrade`).
4. **Labels**: the sample dict of :data:`.labels.SAMPLE_KEYS` (:meth:`sample`).

Sample ``index`` of a renderer with ``seed`` draws all its randomness from
``np.random.default_rng([seed, index])`` (:meth:`LayeredRenderer.rng`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ...ops.psf import blur_with_psf, kernel_half_size
from .config import SceneConfig
from .labels import edge_types, focus_boundary
from .scene import Layer, loguniform

__all__ = ["Composite", "LayeredRenderer", "loguniform"]

#: ``before_blur(k, texture, alpha, radius)``: called for layer ``k`` just before it is blurred, with
#: the texture that will be blurred (may be changed in place), its alpha (``None`` for the background)
#: and its radius (a float, or the background's binned radius map).
BeforeBlur = Callable[[int, np.ndarray, "np.ndarray | None", "float | np.ndarray"], None]


@dataclass
class Composite:
    """A composited scene: linear ``colour`` (HxWx3 float32) and the maps of the visible surface."""

    colour: np.ndarray
    radius: np.ndarray  # rendered blur radius (px), float32
    labels: np.ndarray  # visible layer, uint8 (0 = background)
    depth: np.ndarray  # visible depth (the scene kind's units), float32
    sharp: np.ndarray  # all-in-focus composite of the layers' sharp textures
    object_radii: list[float]
    depth_bins: int  # radius bins of the background (1 = fronto-parallel)


class LayeredRenderer:
    """Base of the renderers: seeds, blurring, compositing, camera and the sample dict.

    Args:
        config: the scene kind's config (a :class:`.config.SceneConfig`).
        seed: dataset seed; sample ``i`` uses ``np.random.default_rng([seed, i])``.

    Subclasses implement :meth:`render_with_info`.
    """

    def __init__(self, config: SceneConfig, seed: int = 0) -> None:
        self.config = config
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = seed

    def rng(self, index: int) -> np.random.Generator:
        """The generator of sample ``index``."""
        index = int(index)
        if index < 0:
            raise IndexError(f"sample index must be >= 0, got {index}")
        return np.random.default_rng([self.seed, index])

    def render(self, index: int) -> dict[str, np.ndarray]:
        """Render sample ``index``: a dict with :data:`.labels.SAMPLE_KEYS`."""
        return self.render_with_info(index)[0]

    def render_with_info(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """:meth:`render` plus a JSON-friendly dict of the drawn parameters."""
        raise NotImplementedError

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
            stack = blur_with_psf(stack, r, cfg.psf, cfg.gaussian_sigma_per_radius, cfg.direct_blur_max_radius)
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

    # ------------------------------------------------------------ compositing
    def composite(
        self,
        layers: Sequence[Layer],
        signed_radius: Callable[[Any], Any],
        textures: Sequence[np.ndarray] | None = None,
        background_radius_depth: float | np.ndarray | None = None,
        before_blur: BeforeBlur | None = None,
    ) -> Composite:
        """Blur and composite ``layers`` back to front (see the module docstring).

        ``textures`` are the ones blurred (default: each layer's ``texture``; the photographic
        scenes blur linear-light copies); the layers' own textures make the all-in-focus
        composite. The background is a tilted plane when its radius depth
        (``background_radius_depth``, default its ``depth_m``) is a map, fronto-parallel when a
        number; its ``depth_m`` fills the depth map.
        """
        h, w = self.config.size
        textures = [layer.texture for layer in layers] if textures is None else textures
        bg = layers[0]
        bg_depth = bg.depth_m if background_radius_depth is None else background_radius_depth
        radius = np.empty((h, w), np.float32)
        labels = np.zeros((h, w), np.uint8)
        depth = np.array(np.broadcast_to(np.float32(bg.depth_m), (h, w)), dtype=np.float32)
        sharp = bg.texture.copy()
        if isinstance(bg_depth, np.ndarray):  # tilted plane: radius bins
            idx, centres = self._plane_bins(signed_radius(bg_depth).astype(np.float32))
            radii = np.abs(centres).astype(np.float32)
            radius[:] = radii[idx]
            if before_blur is not None:
                before_blur(0, textures[0], None, radius)
            colour = self._binned_plane(idx, radii, textures[0])
            n_bins = len(centres)
        else:
            r_bg = float(abs(signed_radius(bg_depth)))
            radius[:] = r_bg
            if before_blur is not None:
                before_blur(0, textures[0], None, r_bg)
            colour, _, _ = self._blurred_layer(None, textures[0], bg.box, r_bg)
            n_bins = 1
        object_radii = []
        for k, layer in enumerate(layers[1:], start=1):
            r = float(abs(signed_radius(layer.depth_m)))
            object_radii.append(r)
            y0, y1, x0, x1 = layer.box
            inside = layer.alpha >= 0.5
            # masked writes with np.copyto / cv2.copyTo: no gather of the masked pixels (cf. a[m] = b[m])
            np.copyto(radius[y0:y1, x0:x1], np.float32(r), where=inside)
            np.copyto(labels[y0:y1, x0:x1], np.uint8(k), where=inside)
            np.copyto(depth[y0:y1, x0:x1], np.float32(layer.depth_m), where=inside)
            sharp[y0:y1, x0:x1] = cv2.copyTo(
                layer.texture, inside.view(np.uint8), np.ascontiguousarray(sharp[y0:y1, x0:x1])
            )
            if before_blur is not None:
                before_blur(k, textures[k], layer.alpha, r)
            c_i, a_i, (ey0, ey1, ex0, ex1) = self._blurred_layer(layer.alpha, textures[k], layer.box, r)
            # over: C <- C_i + (1 - A_i) C
            behind = cv2.multiply(colour[ey0:ey1, ex0:ex1], cv2.cvtColor(1.0 - a_i, cv2.COLOR_GRAY2RGB))
            colour[ey0:ey1, ex0:ex1] = cv2.add(behind, c_i)
        return Composite(colour, radius, labels, depth, sharp, object_radii, n_bins)

    # ------------------------------------------------------------ camera, labels
    def degrade(self, rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
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

    def sample(self, image: np.ndarray, comp: Composite, depth_range: tuple[float, float]) -> dict[str, np.ndarray]:
        """The sample dict (:data:`.labels.SAMPLE_KEYS`): in focus where ``radius <= config.r0_px``,
        ``depth`` normalised over ``depth_range``."""
        cfg = self.config
        mask = (comp.radius <= cfg.r0_px).astype(np.uint8)
        dlo, dhi = depth_range
        depth = np.clip((comp.depth - np.float32(dlo)) / np.float32(dhi - dlo), 0.0, 1.0).astype(np.float32)
        return {
            "image": image,
            "mask": mask,
            "radius": comp.radius,
            "depth": depth,
            "dof_edge": focus_boundary(mask),
            "edge_type": edge_types(comp.labels, comp.radius, comp.sharp, cfg.blur_change_tol, cfg.canny_low,
                                    cfg.canny_high),
            "layers": comp.labels,
        }
