"""BTBNet's simulated pretraining set (Zhao et al., CVPR 2018, Sec. 4.1): the recipe and the ``Dataset``.

Half of a sharp image is blurred by a 7x7 Gaussian with sigma 2 applied ``k = 1..5``
times; the blurred half is the left, right, top or bottom one, so each source gives
20 images. In-focus mask = the sharp half.

:class:`BTBNetPretrainDataset`: sample ``i`` uses source ``i // 20`` and variant
``i % 20`` (blur count, position), so ``length = 20 x sources`` enumerates the paper's
set exactly. Sources are random photo crops from a
:class:`~dbd_lightning.data.synthetic.textures.TextureBank` (the bundled scikit-image
photos, or a folder of sharp photos such as BSDS500 + UCID via ``source_dir``) drawn
with a per-source seed, so the dataset is deterministic and picklable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ...data.synthetic.sources import as_float_rgb, source_image, to_uint8
from ...data.synthetic.textures import TextureBank
from ...ops.psf import blur, gaussian_kernel

__all__ = [
    "BTBNET_KERNEL_SIZE",
    "BTBNET_POSITIONS",
    "BTBNET_SIGMA",
    "BTBNET_TIMES",
    "BTBNET_VARIANTS",
    "BTBNetPretrainDataset",
    "btbnet_blur_half",
    "btbnet_pretrain_sample",
    "btbnet_pretrain_variants",
]

BTBNET_POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom")
BTBNET_TIMES: tuple[int, ...] = (1, 2, 3, 4, 5)
BTBNET_SIGMA: float = 2.0
BTBNET_KERNEL_SIZE: int = 7

#: (times, position) of the 20 variants of one source, in index order.
BTBNET_VARIANTS: tuple[tuple[int, str], ...] = tuple((t, p) for t in BTBNET_TIMES for p in BTBNET_POSITIONS)


def btbnet_blur_half(image: np.ndarray, times: int, position: str) -> tuple[np.ndarray, np.ndarray]:
    """Blur one half of ``image`` by the 7x7 sigma-2 Gaussian applied ``times`` times.

    Returns ``(float32 HxWx3 image, uint8 mask)`` with mask 1 = in focus (the
    sharp half) and 0 on the blurred half at ``position`` (left/right/top/bottom).
    The whole image is blurred, then only the chosen half is kept blurred.
    """
    if position not in BTBNET_POSITIONS:
        raise ValueError(f"unknown position {position!r}; valid: {', '.join(BTBNET_POSITIONS)}")
    if int(times) < 1:
        raise ValueError(f"times must be >= 1, got {times!r}")
    img = as_float_rgb(image)
    kernel = gaussian_kernel(BTBNET_SIGMA, BTBNET_KERNEL_SIZE // 2)
    blurred = img
    for _ in range(int(times)):
        blurred = blur(blurred, kernel)
    h, w = img.shape[:2]
    mask = np.ones((h, w), np.uint8)
    region = {
        "left": (slice(None), slice(0, w // 2)),
        "right": (slice(None), slice(w // 2, None)),
        "top": (slice(0, h // 2), slice(None)),
        "bottom": (slice(h // 2, None), slice(None)),
    }[position]
    out = img.copy()
    out[region] = blurred[region]
    mask[region] = 0
    return out, mask


def btbnet_pretrain_sample(
    rng: np.random.Generator,
    source: np.ndarray | TextureBank,
    size: tuple[int, int] | int | None = (320, 320),
    times: int | None = None,
    position: str | None = None,
) -> dict[str, Any]:
    """One BTBNet pretraining sample: ``times`` (random 1..5) and ``position`` (random of 4).

    Returns ``image`` uint8 HxWx3, ``mask`` uint8 (1 = sharp half), ``times``, ``position``.
    """
    times = int(rng.choice(BTBNET_TIMES)) if times is None else int(times)
    position = BTBNET_POSITIONS[int(rng.integers(4))] if position is None else position
    img, mask = btbnet_blur_half(source_image(rng, source, size), times, position)
    return {"image": to_uint8(img), "mask": mask, "times": times, "position": position}


def btbnet_pretrain_variants(image: np.ndarray):
    """Yield the 20 BTBNet pretraining variants (5 blur strengths x 4 positions) of one image."""
    for times in BTBNET_TIMES:
        for position in BTBNET_POSITIONS:
            img, mask = btbnet_blur_half(image, times, position)
            yield {"image": to_uint8(img), "mask": mask, "times": times, "position": position}


class BTBNetPretrainDataset(Dataset):
    """``length`` samples of BTBNet's half-blurred pretraining set.

    Args:
        length: number of samples (paper: 2000 sources x 20 = 40 000, x16 augmentation = 640K).
        seed: dataset seed (source ``j`` is the same crop for a seed).
        size: ``(H, W)`` or an int: crop size of the sources.
        source_dir: folder of sharp photos (default: the bundled scikit-image photos).
        include_bundled_photos: also draw from the bundled photos when ``source_dir`` is given.

    ``dataset[i]``: ``image`` uint8 HxWx3, ``mask`` uint8 (1 = sharp half), ``times``,
    ``position``, ``name``.
    """

    def __init__(
        self,
        length: int = 40_000,
        seed: int = 0,
        size: int | Sequence[int] = (320, 320),
        source_dir: str | None = None,
        include_bundled_photos: bool = True,
    ) -> None:
        length = int(length)
        if length < 0:
            raise ValueError(f"BTBNetPretrainDataset: length must be >= 0, got {length}")
        self.length, self.seed = length, int(seed)
        self.size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(self.size) != 2 or min(self.size) < 2:
            raise ValueError(f"BTBNetPretrainDataset: size must be (H, W) >= 2, got {size!r}")
        # photo-only bank: the paper blurs natural photographs (BSDS + UCID)
        self.bank = TextureBank(weights={"photo": 1.0}, homogeneous_prob=0.0, source_dir=source_dir,
                                include_bundled_photos=include_bundled_photos)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        source, variant = divmod(index, len(BTBNET_VARIANTS))
        times, position = BTBNET_VARIANTS[variant]
        rng = np.random.default_rng([self.seed, source])
        sample = btbnet_pretrain_sample(rng, self.bank, size=self.size, times=times, position=position)
        sample["name"] = f"btbnet_{self.seed}_{source:06d}_{position}{times}"
        return sample

    def __repr__(self) -> str:
        return f"BTBNetPretrainDataset(length={self.length}, seed={self.seed}, size={self.size})"
