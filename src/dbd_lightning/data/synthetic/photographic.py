"""Photographic scenes: the renderer preset for real-photograph work (``preset=photographic``).

The collage scenes of :mod:`.renderer` (flat colours, procedural textures, random
shapes) teach a network little that transfers to CUHK / DUT photographs. Here
every layer is a photograph and every blur is drawn at the benchmarks' scale:

1. **Layers.** A background photo crop (fronto-parallel, or a tilted plane whose
   inverse depth is affine in the image, :func:`.scene.make_background_depth`),
   an optional mid-ground layer, and 1-2 subjects. Mid-ground and subjects are
   regions **cut from photographs along the photo's own contours**: unions of
   adjacent Felzenszwalb segments (:mod:`.photo_pool`) grown from a sharp seed
   segment, so subjects are textured where the photo is and their outlines are
   real object outlines. Layers come from different photos of one split.
2. **Depth and blur.** Each layer has a depth; the thin lens gives
   ``r = K |1/d - 1/s_f|`` (the ``f^2 / (2 N (s_f - f))`` factor of
   :func:`~dbd_lightning.ops.thin_lens.signed_coc_radius_px` folded into ``K``).
   The focus ``s_f`` is on a subject (``focus_subject_prob``), on the background
   (``focus_background_prob``; a random point of a tilted plane) or nowhere in
   particular otherwise; ``K`` is set so that the most defocused layer gets a
   radius drawn log-uniformly from ``blur_radius_px``, **in pixels at the
   output size**. That range is measured on real benchmark photos resized to
   320 px (``experiments/real_photos/blur_scale.json``) and scaled by
   ``size / 320`` for other sizes. ``all_sharp_prob`` renders all in focus.
3. **Compositing** in linear light (sRGB decoded with gamma 2.2), back to front,
   the physical way for occlusions: each layer's premultiplied colour and its
   matte are blurred with the layer's own PSF, ``C <- PSF*(aT) + (1 - PSF*a) C``;
   tilted planes are binned by radius (``radius_step``, ``n_depth_bins``).
4. **Highlights.** Small bright points (``highlight_gain`` x white, in linear
   light) are added to defocused layers with ``highlight_prob``; the disk PSF
   turns them into bokeh disks.
5. **Camera.** Exposure, a tone curve (gamma ``tone_gamma`` and an S-curve of
   strength ``tone_contrast``), sensor noise, 8-bit quantisation and JPEG.

Ground truth as the collage renderer's (:data:`.labels.SAMPLE_KEYS`): in focus
where ``radius <= r0`` (default 1.0 px at 320 px, scaled with the size: the
benchmarks' in-focus edges measure 0.5-1 px), ``depth`` normalised over
``depth_range``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import cv2
import numpy as np

from .config import PhotoSceneConfig
from .core import LayeredRenderer
from .photo_pool import load_photo, photo_ids, segmented_photo
from .scene import Layer, loguniform, make_background_depth

__all__ = ["PhotographicRenderer"]


def _region_from_segments(rng: np.random.Generator, labels: np.ndarray, sharpness: np.ndarray,
                          target_area: float, sharp_seed: bool) -> np.ndarray:
    """A connected union of adjacent segments of ``labels`` grown to about ``target_area`` pixels (bool)."""
    area = np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)
    present = np.flatnonzero(area)  # = np.unique(labels), without sorting the whole map
    s = sharpness[present]
    if sharp_seed:  # seed among the sharpest half of the visible segments, by area
        cand = present[s >= np.median(s)]
    else:
        cand = present
    weights = area[cand].astype(np.float64)
    seed = int(rng.choice(cand, p=weights / weights.sum()))
    # adjacency of the segments visible in the crop (4-neighbour label changes), as sorted unique pairs
    n_lab = np.int64(area.size)
    codes = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        diff = a != b
        lo, hi = np.minimum(a[diff], b[diff]).astype(np.int64), np.maximum(a[diff], b[diff]).astype(np.int64)
        codes.append(lo * n_lab + hi)
    code = np.unique(np.concatenate(codes))
    pairs = np.stack([code // n_lab, code % n_lab], 1)
    nbrs: dict[int, list[int]] = {}
    for a, b in pairs.tolist():
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    chosen = {seed}
    total = int(area[seed])
    frontier = deque([seed])
    med = float(np.median(s))
    while frontier and total < target_area:
        cur = frontier.popleft()
        options = [n for n in nbrs.get(cur, []) if n not in chosen]
        rng.shuffle(options)
        if sharp_seed:  # grow through the photo's sharp parts first
            options.sort(key=lambda n: sharpness[n] < med)
        for n in options:
            if total >= target_area:
                break
            if total + area[n] > 1.6 * target_area and total > 0.5 * target_area:
                continue
            chosen.add(n)
            total += int(area[n])
            frontier.append(n)
    lut = np.zeros(area.size, bool)
    lut[np.fromiter(chosen, np.int64)] = True
    region = lut[labels]
    # fill holes smaller than the region's scale (a subject is one piece)
    region = cv2.morphologyEx(region.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    return region


class PhotographicRenderer(LayeredRenderer):
    """Deterministic photographic defocus scenes; ``render(index)`` depends on (seed, index, config).

    Same output as :class:`.renderer.SyntheticRenderer` (both use the renderer core,
    :mod:`.core`); see the module docstring for the scene model.
    """

    def __init__(self, config: PhotoSceneConfig | None = None, seed: int = 0) -> None:
        super().__init__(config if config is not None else PhotoSceneConfig(), seed)
        self.photos = photo_ids(self.config.photo_split, self.config.source_dir, self.config.include_bundled_photos)

    def __repr__(self) -> str:
        return f"PhotographicRenderer(split={self.config.photo_split!r}, size={self.config.size}, seed={self.seed})"

    def prepare(self) -> int:
        """Segment every photo of the split now (cached per process); returns how many.

        Otherwise each photo is segmented on its first use (~0.3 s per photo): a persistent
        DataLoader worker pays this once, in its first few dozen samples. Benchmarks call it
        first, so that they time the renderer's steady state and report this cost apart.
        """
        for photo_id in self.photos:
            segmented_photo(photo_id)
        return len(self.photos)

    # ------------------------------------------------------------------ sources
    def _crop(self, rng: np.random.Generator, photo_id: str, segmented: bool):
        """A frame-size crop (never upscaled where the photo allows) and its segment labels."""
        h, w = self.config.size
        if segmented:
            seg = segmented_photo(photo_id)
            img, labels = seg.image, seg.labels
        else:
            img, labels = load_photo(photo_id), None
        ph, pw = img.shape[:2]
        max_scale = min(ph / h, pw / w)
        lo = min(1.0, max_scale)
        scale = loguniform(rng, lo, max_scale) if max_scale > lo else max_scale
        ch, cw = max(1, min(ph, round(h * scale))), max(1, min(pw, round(w * scale)))
        y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
        crop = img[y0:y0 + ch, x0:x0 + cw]
        interp = cv2.INTER_AREA if ch >= h else cv2.INTER_CUBIC
        tex = np.clip(cv2.resize(crop, (w, h), interpolation=interp), 0, 1) if (ch, cw) != (h, w) else crop.copy()
        lab = None
        if labels is not None:
            lab = labels[y0:y0 + ch, x0:x0 + cw]
            if (ch, cw) != (h, w):
                lab = cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
        flip = rng.random() < 0.5
        if flip:
            tex = tex[:, ::-1]
            lab = None if lab is None else lab[:, ::-1]
        tex = np.ascontiguousarray(tex, np.float32)
        if np.array_equal(tex[::16, ::16, 0], tex[::16, ::16, 1]):  # grey photo: a random tint
            tex = cv2.multiply(tex, (*rng.uniform(0.65, 1.0, 3).tolist(), 0.0))
        return tex, (None if lab is None else np.ascontiguousarray(lab))

    def _cutout(self, rng, photo_id: str, area_frac: tuple[float, float], sharp: bool):
        """(texture, alpha, box) of a region of a photo cut along its segments, shifted in the frame (or None)."""
        cfg = self.config
        h, w = cfg.size
        tex, lab = self._crop(rng, photo_id, segmented=True)
        seg = segmented_photo(photo_id)
        target = rng.uniform(*area_frac) * h * w
        region = _region_from_segments(rng, lab, seg.sharpness, target, sharp)
        dy, dx = (int(rng.integers(-round(cfg.subject_shift_frac * s), round(cfg.subject_shift_frac * s) + 1))
                  for s in (h, w))
        x, y, bw, bh = cv2.boundingRect(region.astype(np.uint8))
        if bw * bh == 0:
            return None
        # shift by (dy, dx): only the region's box (grown by the soft outline) is moved, by slicing
        pad = 2
        y0, y1 = max(0, y + dy - pad), min(h, y + bh + dy + pad)
        x0, x1 = max(0, x + dx - pad), min(w, x + bw + dx + pad)
        if y1 - y0 < 1 or x1 - x0 < 1:
            return None
        m = pad + max(abs(dy), abs(dx))  # source rows / columns may lie outside the crop: extend it
        reg = cv2.copyMakeBorder(region.astype(np.uint8), m, m, m, m, cv2.BORDER_CONSTANT, value=0)
        tex = cv2.copyMakeBorder(tex, m, m, m, m, cv2.BORDER_REFLECT)
        sy, sx = y0 - dy + m, x0 - dx + m
        sub = reg[sy:sy + y1 - y0, sx:sx + x1 - x0].astype(np.float32)
        if not sub.any():
            return None
        # a real outline is about a pixel soft
        alpha = cv2.GaussianBlur(sub, (0, 0), 0.6)
        return np.ascontiguousarray(tex[sy:sy + y1 - y0, sx:sx + x1 - x0]), alpha, (y0, y1, x0, x1)

    def _highlights(self, rng: np.random.Generator, tex_lin: np.ndarray, alpha: np.ndarray | None) -> None:
        """Add bright points (linear light, in place) where the layer is opaque."""
        cfg = self.config
        hh, ww = tex_lin.shape[:2]
        n = int(rng.integers(cfg.highlight_count[0], cfg.highlight_count[1] + 1))
        for _ in range(n):
            y, x = int(rng.integers(hh)), int(rng.integers(ww))
            if alpha is not None and alpha[y, x] < 0.5:
                continue
            rad = rng.uniform(0.5, 1.6) * max(cfg.scale, 0.5)
            colour = rng.uniform(*cfg.highlight_gain) * rng.uniform(0.8, 1.0, 3)
            cv2.circle(tex_lin, (x, y), max(0, round(rad)), tuple(float(c) for c in colour), -1, cv2.LINE_AA)

    # ------------------------------------------------------------------ render
    def render_with_info(self, index: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """:meth:`render` plus a JSON-friendly dict of the drawn focus and blur."""
        cfg = self.config
        rng = self.rng(index)
        h, w = cfg.size
        order = rng.permutation(len(self.photos))
        pick = [self.photos[int(i)] for i in order]
        pick = (pick * 4)[:4] if len(pick) < 4 else pick

        # --- layers: background (+ optional mid-ground) + subjects, with depths
        d_bg = loguniform(rng, *cfg.background_depth)
        tilted = rng.random() < cfg.tilted_prob
        near_ratio = rng.uniform(*cfg.tilt_near_ratio)
        bg_depth = make_background_depth(rng, (h, w), d_bg, tilted, near_ratio)
        bg_depth = np.maximum(np.broadcast_to(np.float32(bg_depth), (h, w)), np.float32(cfg.subject_depth[1] * 1.05))
        bg_tex, _ = self._crop(rng, pick[0], segmented=False)
        layers = [Layer(0, (0, h, 0, w), None, bg_tex, bg_depth, pick[0], "plane" if tilted else "fronto")]
        bg_near = float(bg_depth.min())
        if rng.random() < cfg.midground_prob:
            cut = self._cutout(rng, pick[1], cfg.midground_area_frac, sharp=False)
            if cut is not None:
                d_mid = loguniform(rng, cfg.subject_depth[1] * 1.1, max(bg_near * 0.9, cfg.subject_depth[1] * 1.2))
                layers.append(Layer(len(layers), cut[2], cut[1], cut[0], d_mid, pick[1], "midground"))
        n_sub = int(rng.integers(cfg.n_subjects[0], cfg.n_subjects[1] + 1))
        subj_depths = sorted((loguniform(rng, *cfg.subject_depth) for _ in range(n_sub)), reverse=True)
        for k, d in enumerate(subj_depths):
            cut = self._cutout(rng, pick[2 + k], cfg.subject_area_frac, sharp=True)
            if cut is not None:
                layers.append(Layer(len(layers), cut[2], cut[1], cut[0], d, pick[2 + k], "subject"))

        # --- focus and blur scale: r = K |1/d - 1/s_f|, the most defocused layer gets r_ref
        u = rng.random()
        subjects = [L for L in layers if L.shape == "subject"]
        if u < cfg.focus_subject_prob and subjects:
            s_f = float(subjects[int(rng.integers(len(subjects)))].depth_m)
            focus_on = "subject"
        elif u < cfg.focus_subject_prob + cfg.focus_background_prob:
            s_f = float(bg_depth[int(rng.integers(h)), int(rng.integers(w))])
            focus_on = "background"
        else:
            s_f = loguniform(rng, *cfg.depth_range)
            focus_on = "free"
        all_sharp = rng.random() < cfg.all_sharp_prob
        inv_f = 1.0 / s_f
        # |1/d - 1/s_f| is monotonic in d on each side of s_f: its maximum is at the layer's nearest or farthest depth
        spread = max(abs(1.0 / float(d) - inv_f) for L in layers for d in (np.min(L.depth_m), np.max(L.depth_m)))
        r_ref = loguniform(rng, *cfg.blur_radius_px) * cfg.scale
        k_blur = 0.0 if all_sharp or spread <= 0 else r_ref / spread

        def signed_radius(depth):
            return np.float32(k_blur) * (np.float32(inv_f) - 1.0 / np.asarray(depth, np.float32))

        def highlights(k: int, tex_lin: np.ndarray, alpha: np.ndarray | None, radius) -> None:
            """Bright points on a defocused layer, with ``highlight_prob`` (drawn in this order)."""
            bright = 1.5 * cfg.scale
            if k == 0 and tilted:
                if rng.random() < cfg.highlight_prob and radius.max() > bright:
                    self._highlights(rng, tex_lin, np.asarray(radius > bright, np.float32))
            elif k == 0:
                if rng.random() < cfg.highlight_prob and radius > bright:
                    self._highlights(rng, tex_lin, None)
            elif radius > bright and rng.random() < cfg.highlight_prob:
                self._highlights(rng, tex_lin, alpha)

        # --- composite in linear light (the fronto-parallel background's radius is at its mean depth)
        gamma_in = 2.2
        comp = self.composite(layers, signed_radius, textures=[cv2.pow(L.texture, gamma_in) for L in layers],
                              background_radius_depth=None if tilted else float(np.mean(bg_depth)),
                              before_blur=highlights)

        # --- camera: exposure, tone curve (gamma + S-curve), then noise / 8 bit / JPEG
        colour = comp.colour
        colour *= np.float32(rng.uniform(*cfg.exposure))
        np.clip(colour, 0.0, 1.0, out=colour)
        out = cv2.pow(colour, 1.0 / rng.uniform(*cfg.tone_gamma))
        c = np.float32(rng.uniform(*cfg.tone_contrast))
        if c > 0:  # smoothstep blend: keeps 0 and 1, steepens mid-tones
            sq = cv2.multiply(out, out)  # (1 - c) x + c (3 x^2 - 2 x^3), OpenCV's vectorised ops
            out = cv2.scaleAdd(cv2.multiply(sq, out), -2.0 * float(c), cv2.addWeighted(out, 1.0 - float(c), sq, 3.0 * float(c), 0.0))
        sample = self.sample(self.degrade(rng, out), comp, cfg.depth_range)
        info = {"index": int(index), "seed": self.seed, "focus_on": focus_on, "all_sharp": bool(all_sharp),
                "max_radius_px": float(comp.radius.max()), "tilted": bool(tilted), "object_radii_px": comp.object_radii,
                "sources": [L.source for L in layers]}
        return sample, info
