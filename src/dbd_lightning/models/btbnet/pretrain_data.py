"""BTBNet's simulated pretraining set as a ``Dataset`` (Zhao et al., CVPR 2018, Sec. 4.1).

Each sharp source image yields 20 samples: its left / right / top / bottom half blurred
by a 7x7 Gaussian (sigma 2) applied 1..5 times (:func:`.recipes.btbnet_blur_half`).
Sample ``i`` uses source ``i // 20`` and variant ``i % 20`` (blur count, position), so
``length = 20 x sources`` enumerates the paper's set exactly. Sources are random photo
crops from a :class:`.textures.TextureBank` (the bundled scikit-image photos, or a
folder of sharp photos such as BSDS500 + UCID via ``source_dir``) drawn with a per-source
seed, so the dataset is deterministic and picklable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .recipes import BTBNET_POSITIONS, BTBNET_TIMES, btbnet_pretrain_sample
from .textures import TextureBank

__all__ = ["BTBNetPretrainDataset", "BTBNET_VARIANTS"]

#: (times, position) of the 20 variants of one source, in index order.
BTBNET_VARIANTS: tuple[tuple[int, str], ...] = tuple((t, p) for t in BTBNET_TIMES for p in BTBNET_POSITIONS)


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
