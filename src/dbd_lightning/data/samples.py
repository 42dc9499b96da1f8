"""Turn raw numpy samples into model-ready tensors, and batch them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .transforms import EXTRA_MASK_TARGETS


class TransformedDataset(Dataset):
    """Apply a paired albumentations transform to a raw-sample dataset.

    Raw samples are dicts with ``image`` (uint8 HxWx3), ``mask`` (uint8 HxW,
    in-focus = 1), ``name`` and optionally ``depth``/``radius``/``dof_edge``.
    Output: ``image`` (3,h,w) float, ``mask`` (1,h,w) float, the optional maps
    as (1,h,w) float, ``name``, ``orig_size`` (H, W) and, when
    ``keep_full_gt``, ``gt_full`` (1,H,W) float at the original resolution
    (metrics compare there).

    ``seed``: when set, an index may be an ``(epoch, index)`` pair (from
    :class:`~dbd_lightning.data.sampler.EpochSeededSampler`) and the transform's
    random state is reset from ``(seed, epoch, index)`` before the sample is
    augmented, so its augmentation is reproducible across resumes, workers and ranks.
    """

    def __init__(self, base: Dataset, transform: Callable, keep_full_gt: bool = False,
                 seed: int | None = None) -> None:
        self.base, self.transform, self.keep_full_gt, self.seed = base, transform, keep_full_gt, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        if isinstance(index, tuple):
            epoch, index = index
            if self.seed is not None and hasattr(self.transform, "set_random_seed"):
                state = np.random.SeedSequence([int(self.seed), int(epoch), int(index)]).generate_state(1)[0]
                self.transform.set_random_seed(int(state))
        raw = self.base[index]
        image, mask = raw["image"], raw["mask"]
        if image.shape[:2] != mask.shape[:2]:
            raise ValueError(
                f"sample {raw.get('name', index)}: image size {image.shape[:2]} != mask size {mask.shape[:2]}"
            )
        extras = {k: np.asarray(raw[k], dtype=np.float32) for k in EXTRA_MASK_TARGETS if k in raw}
        out = self.transform(image=image, mask=mask, **extras)
        sample = {
            "image": out["image"].float(),
            "mask": torch.as_tensor(out["mask"]).float()[None],
            "name": str(raw.get("name", index)),
            "orig_size": torch.tensor(mask.shape[:2]),
        }
        for k in extras:
            sample[k] = torch.as_tensor(out[k]).float()[None]
        if "labeled" in raw:  # self-training: 1 = the mask is a label, 0 = an unlabeled photo (placeholder mask)
            sample["labeled"] = torch.tensor(float(raw["labeled"]))
        if self.keep_full_gt:
            sample["gt_full"] = torch.from_numpy(np.ascontiguousarray(mask)).float()[None]
        return sample


def collate_samples(samples: list[dict]) -> dict:
    """Stack tensors of equal shape; keep per-image lists otherwise (e.g. ``gt_full``).

    Only keys every sample has are kept: a batch mixing real photographs (image, mask) with synthetic
    scenes (also depth, radius, DOF edges) carries what all of them have.
    """
    batch: dict = {}
    common = set.intersection(*(set(s) for s in samples)) if samples else set()
    for key in [k for k in samples[0] if k in common]:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor) and all(v.shape == values[0].shape for v in values):
            batch[key] = torch.stack(values)
        else:
            batch[key] = values
    return batch
