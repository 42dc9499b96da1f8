"""Karaali, Harte & Jung full blur-estimation pipeline (Sec. III) as a ``predict_image`` predictor.

1. edges: Canny on the HSV hue (:func:`~dbd_lightning.ops.edges.canny_hue`) or a given map;
2. E-NET: pattern (0) / depth (1) edge per edge pixel;
3. B-NET: blur level per edge pixel (23 disk radii 0.5 .. 6.0 px);
4. sparse map = radius at pattern edges; depth edges dropped;
5. dense map (Eq. 1) = ``F(sparse) / F(pattern-edge mask)`` with the recursive DT
   filter, guide = the image simplified by the DT filter itself
   (``sigma_s = 7``, ``sigma_r = 0.5``, image in [0, 1]) and propagation
   ``sigma_s = min(H, W) / 8``, ``sigma_r = 3.75``, depth-edge penalty ``psi``;
6. DBD (Eq. 5): in focus where ``blur <= tau``, ``tau = alpha v_max + (1 - alpha) v_min``.

Steps 2-3 run the networks densely (see :mod:`.engine`): numerically the same
as one 41x41 patch per edge pixel, many times faster. Each layer is computed only where an
edge pixel's patch reads it (gathered when that is a small part of the map), E-NET runs
first and B-NET only at the pattern edges (the blur map never uses a depth edge's radius).
``wide_stride=3`` (an approximation, off by default) runs the 41 and 27 streams at their
native stride 3 and reads them at each edge pixel's nearest grid point (<= 1 px away).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...ops.cpu_memory import reuse_freed_memory
from ...ops.domain_transform import PENALTY_PLACEMENTS, dt_filter, normalized_dt_propagation
from ...ops.edges import CANNY_HIGH, CANNY_LOW, CANNY_SIGMA, canny_hue
from ...ops.patches import BORDERS, extract_patches, reflect_pad
from ...ops.sparse_conv import SPARSE_MAX
from ...utils.checkpoint import load_weights
from .engine import (
    WIDE_PHASE,
    grid_needs,
    pixel_mask,
    snap_to_wide_grid,
    stream_dense,
    streams_dense,
    trunk_from_dense,
    wide_grid_shape,
)
from .levels import BNET_RADII
from .torch_model import BNet, ENet, Trunk

__all__ = ["KaraaliPipeline", "BNET_RADII", "dbd_threshold"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dbd_threshold(blur: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Eq. (5): in-focus mask ``blur <= tau`` with ``tau = alpha v_max + (1 - alpha) v_min``."""
    vmax, vmin = float(np.max(blur)), float(np.min(blur))
    tau = alpha * vmax + (1.0 - alpha) * vmin
    return (blur <= tau).astype(np.float32), tau


class KaraaliPipeline:
    """Image -> dense blur map (disk radius, px) -> DBD mask. See the module docstring.

    Args:
        bnet, enet: networks, or None to load ``bnet_ckpt`` / ``enet_ckpt`` (our
            Lightning checkpoints or converted published weights, ``net.`` prefix).
        use_enet: False = every edge is a pattern edge (no depth-edge handling).
        psi: depth-edge penalty (paper 100; the authors' code 20; 0 = ablation).
        alpha: DBD threshold weight of Eq. (5).
        readout: ``argmax`` (paper: the class's radius) or ``expectation``
            (softmax-weighted mean radius).
        focus: ``mask`` (thresholded, the paper's DBD) or ``soft`` (``1 -`` the
            min-max normalised blur map).
        precision: network dtype (``float32``; ``bfloat16`` is much faster on CPUs with AMX, much
            slower on AVX2-only CPUs).
        chunk: edge pixels per block of the per-pixel trunk (smaller blocks stay in cache: 512 is
            fastest on a 2-core AVX2 CPU, 4096 ~10 % slower) and patches per patch-wise batch.
        sparse_max: needed fraction of a dense map up to which a layer is gathered at the
            needed positions instead of run densely (0 = always dense; exact either way).
        winograd: the per-pixel 3x3 trunk conv by Winograd F(3x3, 3x3) (None = for float32/64).
        patchwise_max: up to this many edge pixels the networks run patch-wise (one 41x41
            patch per pixel, batched) instead of on dense maps; 0 = always dense.
        reuse_memory: keep freed heap memory for reuse while an image runs on the CPU
            (glibc; avoids ~2 GB of page faults per 360x360 image, see :mod:`~dbd_lightning.ops.cpu_memory`).
        wide_stride: 1 = exact (the paper: every edge pixel's own 41x41 patch); 3 = the 41 and 27
            streams at their native stride 3 (pooling stride as in training), read at each edge
            pixel's nearest point of that grid (<= 1 px per axis; the 15 stream and the trunk at
            the pixel): 1/9 of the positions for their post-pooling layers and the first trunk
            conv; an approximation, measured in the family README.
        per_cell: (with ``wide_stride=3``) evaluate the networks once per occupied 3x3 cell of that
            grid, at the cell's centre (<= 1 px per axis from its edge pixels; 2 at the last row or
            column of some image sizes), and give every edge pixel its cell's result: also the 15
            stream and the per-pixel trunk run once per cell (dense edge maps have ~2-3 edge pixels
            per cell); a further approximation.
        border: padding of the image before the 41x41 patches: ``reflect`` (ours, edge pixel not
            repeated) or ``symmetric`` (the authors' code: OpenCV ``BORDER_REFLECT``), see
            :mod:`~dbd_lightning.ops.patches`.
        penalty_placement: depth-edge penalty of the link ``x -- x+1``: ``mean`` (ours,
            ``psi (E[x] + E[x+1]) / 2``, the integral of Eq. 3) or ``next`` (the authors' code,
            ``psi E[x+1]``), see :mod:`~dbd_lightning.ops.domain_transform`.
        dt_precision: dtype of the guide and propagation filters: ``float32`` (ours) or
            ``float64`` (the authors' code runs them in NumPy float64).
        random_init: allow running without checkpoints (smoke tests only).
    """

    def __init__(self, bnet: BNet | None = None, enet: ENet | None = None, bnet_ckpt: str | None = None,
                 enet_ckpt: str | None = None, use_enet: bool = True, psi: float = 100.0, alpha: float = 0.5,
                 guide_sigma_s: float = 7.0, guide_sigma_r: float = 0.5, sigma_s_divisor: float = 8.0,
                 sigma_r: float = 3.75, iterations: int = 5, canny_sigma: float = CANNY_SIGMA,
                 canny_low: float = CANNY_LOW, canny_high: float = CANNY_HIGH, edge_channel: str = "hue",
                 readout: str = "argmax", focus: str = "mask", device: str = "auto", precision: str = "float32",
                 chunk: int = 512, random_init: bool = False, crop27: int = 8, crop15: int = 14,
                 sparse_max: float = SPARSE_MAX, winograd: bool | None = None, patchwise_max: int = 192,
                 reuse_memory: bool = True, wide_stride: int = 1, per_cell: bool = False,
                 border: str = "reflect", penalty_placement: str = "mean", dt_precision: str = "float32") -> None:
        if border not in BORDERS:
            raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
        if penalty_placement not in PENALTY_PLACEMENTS:
            raise ValueError(f"penalty_placement must be one of {PENALTY_PLACEMENTS}, got {penalty_placement!r}")
        if dt_precision not in ("float32", "float64"):
            raise ValueError(f"dt_precision must be 'float32' or 'float64', got {dt_precision!r}")
        self.border, self.penalty_placement = border, penalty_placement
        self.dt_dtype = torch.float64 if dt_precision == "float64" else torch.float32
        if readout not in ("argmax", "expectation"):
            raise ValueError(f"readout must be 'argmax' or 'expectation', got {readout!r}")
        if focus not in ("mask", "soft"):
            raise ValueError(f"focus must be 'mask' or 'soft', got {focus!r}")
        if precision not in _DTYPES:
            raise ValueError(f"precision must be one of {sorted(_DTYPES)}, got {precision!r}")
        if wide_stride not in (1, 3):
            raise ValueError(f"wide_stride must be 1 (exact) or 3 (native stride of the 41/27 streams), "
                             f"got {wide_stride!r}")
        if per_cell and wide_stride != 3:
            raise ValueError("per_cell=true evaluates once per cell of the stride-3 grid: it needs wide_stride=3")
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        self.dtype = _DTYPES[precision]
        self.bnet = self._load(bnet, bnet_ckpt, BNet, "bnet", random_init, crop27, crop15)
        self.enet = self._load(enet, enet_ckpt, ENet, "enet", random_init, crop27, crop15) if use_enet else None
        self.shared_f1 = self.enet is not None and self.enet.shares_f1_with(self.bnet)
        self.psi, self.alpha = float(psi), float(alpha)
        self.guide_sigma_s, self.guide_sigma_r = float(guide_sigma_s), float(guide_sigma_r)
        self.sigma_s_divisor, self.sigma_r, self.iterations = float(sigma_s_divisor), float(sigma_r), int(iterations)
        self.canny = dict(sigma=canny_sigma, low=canny_low, high=canny_high, channel=edge_channel)
        self.readout, self.focus, self.chunk = readout, focus, int(chunk)
        self.sparse_max, self.winograd, self.reuse_memory = float(sparse_max), winograd, bool(reuse_memory)
        self.patchwise_max = int(patchwise_max)
        self.wide_stride = int(wide_stride)
        #: phase of the native-stride grid (None: exact evaluation)
        self.wide_phase = WIDE_PHASE if self.wide_stride == 3 else None
        self.per_cell = bool(per_cell)
        self.radii = torch.tensor(BNET_RADII, dtype=torch.float32, device=self.device)

    def _load(self, net, ckpt, cls, name, random_init, crop27, crop15):
        if net is None:
            net = cls(crop27=crop27, crop15=crop15)
            if ckpt is not None:
                if not Path(ckpt).is_file():
                    raise FileNotFoundError(f"Karaali {name} checkpoint not found: {ckpt} (train it with "
                                            f"experiment=karaali_{name} or convert the published weights with "
                                            f"python -m dbd_lightning.convert karaali)")
                load_weights(net, ckpt, prefix="net.")
            elif not random_init:
                raise ValueError(f"Karaali pipeline: no {name} weights; set {name}_ckpt=<file> "
                                 f"(or random_init=true for a smoke test)")
        net = net.to(self.device).eval()
        if self.device.type == "cpu":
            net = net.to(memory_format=torch.channels_last)
        return net.to(self.dtype)

    # ------------------------------------------------------------------ #
    def edges(self, rgb: np.ndarray) -> np.ndarray:
        return canny_hue(rgb, **self.canny)

    def _memory(self):
        return reuse_freed_memory(self.reuse_memory and self.device.type == "cpu")

    def _trunk(self, trunk: Trunk, wide: list[torch.Tensor], narrow: torch.Tensor, ys: torch.Tensor,
               xs: torch.Tensor) -> torch.Tensor:
        return trunk_from_dense(trunk, wide, narrow, ys, xs, self.chunk, self.sparse_max, self.winograd,
                                self.wide_phase).float()

    @torch.no_grad()
    def classify_edges(self, rgb: np.ndarray, edges: np.ndarray,
                       depth_radius: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ys, xs)`` of the edge pixels, their radius (px) and depth-edge flag.

        ``depth_radius=False``: B-NET runs at the pattern edges only; the radius of a depth edge
        is then NaN (:meth:`estimate` never uses it). Up to ``patchwise_max`` edge pixels the
        networks run patch-wise (one 41x41 patch each), otherwise on the dense maps. With
        ``per_cell`` they run at the cell centres and each edge pixel gets its cell's values.
        """
        ys_np, xs_np = np.nonzero(edges)
        n = len(ys_np)
        if n == 0:
            return np.stack([ys_np, xs_np]), np.zeros(0, np.float32), np.zeros(0, bool)
        with self._memory():
            img = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
            padded = reflect_pad(img, border=self.border).to(self.dtype)
            if self.device.type == "cpu":
                padded = padded.contiguous(memory_format=torch.channels_last)
            ys = torch.from_numpy(ys_np).to(self.device)
            xs = torch.from_numpy(xs_np).to(self.device)
            cell = None
            if self.per_cell:  # one evaluation per occupied cell, at its centre (a grid point)
                grid = wide_grid_shape(*edges.shape, self.wide_phase)
                uy, ux = snap_to_wide_grid(ys, xs, grid, self.wide_phase)
                centres, cell = torch.unique(uy * grid[1] + ux, return_inverse=True)
                ys = self.wide_phase + 3 * torch.div(centres, grid[1], rounding_mode="floor")
                xs = self.wide_phase + 3 * (centres % grid[1])
            run = self._patchwise if ys.numel() <= self.patchwise_max else self._dense
            depth, sel, logits = run(padded, ys, xs, edges.shape, depth_radius)
            radius = torch.full((ys.numel(),), float("nan"))
            if logits is not None:
                if self.readout == "argmax":
                    r = self.radii[logits.argmax(1)]
                else:
                    r = logits.softmax(1) @ self.radii
                radius[sel.cpu()] = r.cpu()
            if cell is not None:  # every edge pixel takes its cell's result
                radius, depth = radius[cell.cpu()], depth[cell]
        return np.stack([ys_np, xs_np]), radius.numpy(), depth.cpu().numpy()

    def _dense(self, padded: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, shape: tuple[int, int],
               depth_radius: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Depth flags, the pixels B-NET ran at and its logits there, from the dense maps."""
        h, w = shape
        phase = self.wide_phase

        def needs(y: torch.Tensor, x: torch.Tensor):
            return grid_needs(pixel_mask(y, x, h, w), phase) if self.sparse_max > 0 else None

        maps = None
        depth = torch.zeros_like(ys, dtype=torch.bool)
        if self.enet is not None:
            need = needs(ys, xs)
            f1 = streams_dense(self.bnet.streams if self.shared_f1 else self.enet.f1, padded, need, self.sparse_max,
                               phase)
            f2 = stream_dense(self.enet.f2, padded, None if need is None else need[0], self.sparse_max, phase)
            depth = self._trunk(self.enet.trunk, [f2, *f1[:2]], f1[2], ys, xs).argmax(1) == 1
            del f2
            if self.shared_f1:
                maps = f1
            del f1
        sel = torch.ones_like(depth) if depth_radius else ~depth
        if not sel.any():
            return depth, sel, None
        yb, xb = ys[sel], xs[sel]
        if maps is None:
            maps = streams_dense(self.bnet.streams, padded, needs(yb, xb), self.sparse_max, phase)
        return depth, sel, self._trunk(self.bnet.trunk, maps[:2], maps[2], yb, xb)

    def _patchwise(self, padded: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, shape: tuple[int, int],
                   depth_radius: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """As :meth:`_dense`, one 41x41 patch per edge pixel (cheaper for a few hundred pixels or less);
        with ``wide_stride=3`` the 41 and 27 streams see the patch at the pixel's nearest grid point."""
        depths, sels, logits = [], [], []
        grid = wide_grid_shape(*shape, self.wide_phase) if self.wide_phase is not None else None

        def patches(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            p = extract_patches(padded, y, x)
            return p.contiguous(memory_format=torch.channels_last) if self.device.type == "cpu" else p

        for s in range(0, ys.numel(), self.chunk):
            y, x = ys[s:s + self.chunk], xs[s:s + self.chunk]
            p = patches(y, x)
            if grid is None:
                pw = p
            else:
                uy, ux = snap_to_wide_grid(y, x, grid, self.wide_phase)
                pw = patches(self.wide_phase + 3 * uy, self.wide_phase + 3 * ux)
            f1 = self.bnet.streams(pw, p) if self.shared_f1 or self.enet is None else None
            depth = torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)
            if self.enet is not None:
                e1 = f1 if self.shared_f1 else self.enet.f1(pw, p)
                depth = self.enet.trunk(torch.cat([self.enet.f2(pw), *e1], 1)).argmax(1) == 1
            sel = torch.ones_like(depth) if depth_radius else ~depth
            if sel.any():
                feats = torch.cat(f1, 1)[sel] if f1 is not None else torch.cat(self.bnet.streams(pw[sel], p[sel]), 1)
                logits.append(self.bnet.trunk(feats).float())
            depths.append(depth)
            sels.append(sel)
        return torch.cat(depths), torch.cat(sels), torch.cat(logits) if logits else None

    @torch.no_grad()
    def propagate(self, rgb: np.ndarray, sparse: np.ndarray, pattern: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Eq. (1)-(3): dense blur map from the sparse pattern-edge estimates."""
        h, w = sparse.shape
        img = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].to(self.dt_dtype)
        img = img / 255.0
        guide = dt_filter(img, img, self.guide_sigma_s, self.guide_sigma_r, self.iterations)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dt_dtype)[None, None]  # noqa: E731
        dense = normalized_dt_propagation(t(sparse), t(pattern), guide, min(h, w) / self.sigma_s_divisor,
                                          self.sigma_r, self.iterations, self.psi, t(depth),
                                          penalty_placement=self.penalty_placement)
        return dense[0, 0].cpu().numpy()

    def estimate(self, rgb: np.ndarray, edges: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Blur map (px) and intermediate maps of one ``HxWx3`` uint8 RGB image."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        edges = self.edges(rgb) if edges is None else np.asarray(edges) != 0
        if edges.shape != (h, w):
            raise ValueError(f"edge map has shape {edges.shape}, image is {(h, w)}")
        with self._memory():
            (ys, xs), radius, is_depth = self.classify_edges(rgb, edges, depth_radius=False)
            sparse = np.zeros((h, w), np.float32)
            pattern = np.zeros((h, w), np.float32)
            depth = np.zeros((h, w), np.float32)
            sparse[ys, xs] = np.where(is_depth, 0.0, radius)
            pattern[ys, xs] = ~is_depth
            depth[ys, xs] = is_depth
            blur = self.propagate(rgb, sparse, pattern, depth)
        return {"blur_radius": blur.astype(np.float32), "sparse": sparse, "pattern_edges": pattern,
                "depth_edges": depth}

    #: ``predict ... edges=DIR`` may pass a precomputed edge map to :meth:`predict_image`
    accepts_edges = True

    def predict_image(self, rgb: np.ndarray, edges: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Predictor protocol: ``focus`` (in-focus = 1), ``blur_radius`` (px), ``edges`` (1 pattern, 2 depth).

        ``edges``: a precomputed ``HxW`` edge map (nonzero = edge; the authors' ``-e`` option)
        instead of the hue Canny.
        """
        out = self.estimate(rgb, edges)
        blur = out["blur_radius"]
        if self.focus == "mask":
            focus, _ = dbd_threshold(blur, self.alpha)
        else:
            lo, hi = float(blur.min()), float(blur.max())
            focus = 1.0 - (blur - lo) / (hi - lo) if hi > lo else np.ones_like(blur)
        edges = out["pattern_edges"] + 2.0 * out["depth_edges"]
        return {"focus": np.clip(focus, 0, 1).astype(np.float32), "blur_radius": blur,
                "edges": edges.astype(np.float32)}

    @property
    def description(self) -> str:
        return (f"Karaali pipeline (psi={self.psi}, alpha={self.alpha}, enet={'on' if self.enet else 'off'}, "
                f"{self.readout}, {str(self.dtype).split('.')[-1]}, {self.device}"
                f"{', wide_stride=3 (approximate)' if self.wide_phase is not None else ''}"
                f"{', per_cell' if self.per_cell else ''}"
                f"{f', border={self.border}' if self.border != 'reflect' else ''}"
                f"{f', penalty={self.penalty_placement}' if self.penalty_placement != 'mean' else ''}"
                f"{', dt float64' if self.dt_dtype == torch.float64 else ''})")
