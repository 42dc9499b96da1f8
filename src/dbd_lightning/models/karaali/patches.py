"""Synthetic edge-patch data for Karaali's B-NET and E-NET (paper Sec. IV-A), in memory.

Each dataset renders its images once (seeded) with the recipes of
:mod:`.synthetic` and keeps 41x41 uint8 RGB patches
(reflect padding 20, as at inference) plus integer labels.

* ``bnet``: a sharp photo crop blurred by one disk radius among the 23 levels
  0.5, ..., 6.0 px (``karaali_bnet``-style); the level cycles over the images and
  every image gives the same number of patches, so the levels are balanced.
  Label = level index.
* ``enet``: half the images are foreground/background composites (object blurred
  with ``r_fg``, alpha-blended over a background blurred with ``r_bg > r_fg``,
  radii {0, 1, 3, 5}, the 6 pairs cycling): patches at the object boundary are
  *depth* edges (label 1). The other half are photos with a *pattern* of blur:
  uniform, gradual (linear ramp of the radius in a random direction) or
  step-wise (the ramp quantised to 0.25 px steps); patches at their edges are
  *pattern* edges (label 0). Images are rotated by an angle drawn from
  ``rotations`` (paper: -90, -30, 60, 135, 180; 0 = unrotated) with reflected borders.

Edge points: Canny of the **sharp** source (hue channel, the paper's detector,
united with the gray-level Canny so that grey textures give points too), so every
blur level is sampled at the same kind of structure; a documented choice, the paper
does not say on which image the training edges were detected.
"""

from __future__ import annotations

import math

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ...data.synthetic.scene import SHAPES, random_shape
from ...data.synthetic.sources import to_uint8
from ...data.synthetic.textures import TextureBank
from ...ops.edges import canny_hue
from ...ops.psf import blur, disk_kernel
from .levels import BNET_RADII, BNET_RADIUS_STEP, ENET_RADII
from .synthetic import karaali_enet_composite

__all__ = ["KaraaliPatchDataset", "KaraaliPatchDataModule", "ENET_ROTATIONS", "blur_pattern"]

PAD = 20
ENET_ROTATIONS: tuple[float, ...] = (0.0, -90.0, -30.0, 60.0, 135.0, 180.0)
PATTERNS = ("uniform", "gradual", "step")


def _edge_points(sharp: np.ndarray) -> np.ndarray:
    u8 = to_uint8(sharp)
    return canny_hue(u8) | canny_hue(u8, channel="gray")


def _patches(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``(N, 3, 41, 41)`` uint8 patches of an ``HxWx3`` uint8 image (reflect padding 20)."""
    padded = np.pad(image, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="reflect")
    off = np.arange(2 * PAD + 1)
    return padded[(ys[:, None] + off)[:, :, None], (xs[:, None] + off)[:, None, :]].transpose(0, 3, 1, 2)


def _rotate(image: np.ndarray, angle: float, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    if angle == 0:
        return image
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=interp, borderMode=cv2.BORDER_REFLECT_101)


def blur_pattern(rng: np.random.Generator, sharp: np.ndarray, kind: str) -> np.ndarray:
    """Spatially varying disk blur of ``sharp`` (float RGB): ``uniform`` / ``gradual`` / ``step`` (0.25 px).

    The radius map is a ramp between two of the 23 levels along a random direction;
    pixels are interpolated linearly between the images blurred with the two nearest levels.
    """
    h, w = sharp.shape[:2]
    levels = np.asarray(BNET_RADII, np.float32)
    if kind == "uniform":
        return blur(sharp, disk_kernel(float(levels[rng.integers(len(levels))])))
    a, b = sorted(rng.choice(len(levels), 2, replace=False))
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.cos(theta) * xx + np.sin(theta) * yy
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    radius = levels[a] + t * (levels[b] - levels[a])
    if kind == "step":
        radius = levels[0] + np.floor((radius - levels[0]) / BNET_RADIUS_STEP + 0.5) * BNET_RADIUS_STEP
    elif kind != "gradual":
        raise ValueError(f"blur pattern must be one of {PATTERNS}, got {kind!r}")
    idx = np.clip((radius - levels[0]) / BNET_RADIUS_STEP, 0, len(levels) - 1)
    lo = np.floor(idx).astype(int)
    hi = np.minimum(lo + 1, len(levels) - 1)
    frac = (idx - lo).astype(np.float32)
    out = np.zeros_like(sharp)
    for k in np.unique(np.concatenate([lo.ravel(), hi.ravel()])):
        wk = (1.0 - frac) * (lo == k) + frac * (hi == k)
        out += wk[..., None] * blur(sharp, disk_kernel(float(levels[k])))
    return out


class KaraaliPatchDataset(Dataset):
    """In-memory synthetic edge patches; items ``{"image": float (3,41,41) in [0,1], "label": int}``.

    Args:
        task: ``bnet`` (23 blur levels) or ``enet`` (0 pattern / 1 depth edge).
        n_images: images to render (B-NET: the levels cycle; E-NET: half depth, half pattern).
        patches_per_image: edge points drawn per image (with replacement when fewer).
        size: rendered image side (px).
        rotations: E-NET rotation angles (degrees), one drawn per image.
    """

    def __init__(self, task: str = "bnet", n_images: int = 46, patches_per_image: int = 32, size: int = 96,
                 seed: int = 0, rotations: tuple[float, ...] = ENET_ROTATIONS, source_dir: str | None = None) -> None:
        if task not in ("bnet", "enet"):
            raise ValueError(f"task must be 'bnet' or 'enet', got {task!r}")
        if size <= PAD:
            raise ValueError(f"size must be > {PAD} px (reflect padding), got {size}")
        if n_images < 1 or patches_per_image < 1:
            raise ValueError(f"n_images and patches_per_image must be >= 1, got {n_images}, {patches_per_image}")
        self.task, self.size = task, int(size)
        rng = np.random.default_rng(seed)
        bank = TextureBank(weights={"photo": 0.7, "noise": 0.1, "stripes": 0.1, "checkers": 0.1},
                           homogeneous_prob=0.0, source_dir=source_dir)
        patches, labels = [], []
        for i in range(n_images):
            if task == "bnet":
                img, pts, label = self._bnet_image(rng, bank, i % len(BNET_RADII))
            else:
                img, pts, label = self._enet_image(rng, bank, i, tuple(rotations))
            ys, xs = np.nonzero(pts)
            pick = rng.choice(len(ys), patches_per_image, replace=len(ys) < patches_per_image)
            patches.append(_patches(img, ys[pick], xs[pick]))
            labels.append(np.full(patches_per_image, label, np.int64))
        self.patches = torch.from_numpy(np.ascontiguousarray(np.concatenate(patches)))
        self.labels = torch.from_numpy(np.concatenate(labels))

    def _sharp_with_edges(self, rng, bank):
        for _ in range(20):
            sharp = bank.sample(rng, (self.size, self.size))[0]
            edges = _edge_points(sharp)
            if edges.any():
                return sharp, edges
        raise RuntimeError("could not draw a textured image with edges in 20 tries")

    def _bnet_image(self, rng, bank, level):
        sharp, edges = self._sharp_with_edges(rng, bank)
        img = blur(sharp, disk_kernel(BNET_RADII[level]))
        return to_uint8(img), edges, level

    def _enet_image(self, rng, bank, i, rotations):
        angle = float(rotations[int(rng.integers(len(rotations)))])
        if i % 2 == 0:  # depth edges: object boundary of a composite
            pairs = [(a, b) for j, a in enumerate(ENET_RADII) for b in ENET_RADII[j + 1:]]
            r_fg, r_bg = pairs[(i // 2) % len(pairs)]
            fg, bgi = bank.sample(rng, (self.size, self.size))[0], bank.sample(rng, (self.size, self.size))[0]
            shape = random_shape(rng, (self.size, self.size), rng.uniform(0.35, 0.7) * self.size,
                                 SHAPES[int(rng.integers(len(SHAPES)))])
            alpha = shape.astype(np.float32) / np.float32(255.0)
            img = karaali_enet_composite(fg, bgi, alpha, r_fg, r_bg)
            mask = (alpha >= 0.5).astype(np.uint8)
            img, mask = _rotate(img, angle), _rotate(mask, angle, cv2.INTER_NEAREST)
            pts = mask ^ cv2.erode(mask, np.ones((3, 3), np.uint8))
            if not pts.any():  # degenerate shape: fall back to a pattern image
                return self._enet_image(rng, bank, i + 1, rotations)
            label = 1
        else:  # pattern edges: uniform / gradual / step-wise blur of one photo
            sharp, pts = self._sharp_with_edges(rng, bank)
            img = blur_pattern(rng, sharp, PATTERNS[(i // 2) % len(PATTERNS)])
            img, pts = _rotate(img, angle), _rotate(pts.astype(np.uint8), angle, cv2.INTER_NEAREST)
            if not pts.any():
                return self._enet_image(rng, bank, i + 2, rotations)
            label = 0
        return to_uint8(img), pts.astype(bool), label

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.patches[index].float() / 255.0, "label": self.labels[index]}

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels).tolist()


class KaraaliPatchDataModule(L.LightningDataModule):
    """Train / val / test patch sets from disjoint seeds (the paper's 80/20 split is the ratio of the sizes)."""

    def __init__(self, task: str = "bnet", train_images: int = 184, val_images: int = 46, test_images: int = 46,
                 patches_per_image: int = 32, size: int = 96, batch_size: int = 256, eval_batch_size: int = 512,
                 num_workers: int = 0, seed: int = 0, rotations: tuple[float, ...] = ENET_ROTATIONS,
                 source_dir: str | None = None) -> None:
        super().__init__()
        self.kw = dict(task=task, patches_per_image=patches_per_image, size=size, rotations=tuple(rotations),
                       source_dir=source_dir)
        self.n = {"train": train_images, "val": val_images, "test": test_images}
        self.seed, self.batch_size, self.eval_batch_size = int(seed), int(batch_size), int(eval_batch_size)
        self.num_workers = int(num_workers)
        self.sets: dict[str, KaraaliPatchDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        for k, offset in (("train", 0), ("val", 1), ("test", 2)):
            if k not in self.sets:
                self.sets[k] = KaraaliPatchDataset(n_images=self.n[k], seed=self.seed * 10 + offset, **self.kw)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.sets[split], batch_size=self.batch_size if shuffle else self.eval_batch_size,
                          shuffle=shuffle, num_workers=self.num_workers, drop_last=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)
