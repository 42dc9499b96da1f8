"""Paired image + mask transforms (albumentations), built from config numbers.

Masks (focus mask, depth, blur radius, edges) are resized with nearest
neighbour, the image bilinearly. The D-DFFNet recipe (Sec. IV-A): resize to
320x320, random flip p=0.5 (vertical in the paper, horizontal in the authors'
code), colour jitter (0.1, 0.1, 0.1), ImageNet normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from .normalization import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (their public home stays this module too)

#: extra per-pixel targets a sample may carry; geometric ops apply to them like the mask
EXTRA_MASK_TARGETS = ("depth", "radius", "dof_edge")

FLIPS = {
    "none": [],
    "horizontal": [A.HorizontalFlip],
    "vertical": [A.VerticalFlip],
    "both": [A.HorizontalFlip, A.VerticalFlip],
}


def _resize(size: Sequence[int]) -> A.Resize:
    h, w = size
    return A.Resize(h, w, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST)


def build_train_transform(
    size: Sequence[int] = (320, 320),
    flip: str = "vertical",
    flip_p: float = 0.5,
    color_jitter: Sequence[float] | None = (0.1, 0.1, 0.1),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    crop_scale: Sequence[float] | None = None,
) -> A.Compose:
    """Training transform: resize, flip, colour jitter, normalise, to tensor.

    ``crop_scale`` (not in the papers, which resize the whole image; ``None`` = theirs): a random crop
    of ``[min, max]`` of the image's area at the image's own aspect ratio, resized to ``size``
    (albumentations ``RandomResizedCrop``): more distinct views of a small real training set.
    """
    if flip not in FLIPS:
        raise ValueError(f"flip must be one of {list(FLIPS)}, got {flip!r}")
    if crop_scale is None:
        ops: list = [_resize(size)]
    else:
        lo, hi = (float(v) for v in crop_scale)
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must be [min, max] with 0 < min <= max <= 1, got {list(crop_scale)}")
        ops = [A.RandomResizedCrop(size=tuple(size), scale=(lo, hi), ratio=(1.0, 1.0), interpolation=cv2.INTER_LINEAR,
                                   mask_interpolation=cv2.INTER_NEAREST, p=1.0)]
    ops += [f(p=flip_p) for f in FLIPS[flip]]
    if color_jitter:
        b, c, s = color_jitter
        ops.append(A.ColorJitter(brightness=b, contrast=c, saturation=s, hue=0.0, p=1.0))
    ops += [A.Normalize(mean=mean, std=std), ToTensorV2()]
    return A.Compose(ops, additional_targets={k: "mask" for k in EXTRA_MASK_TARGETS})


def build_eval_transform(
    size: Sequence[int] | None = (320, 320),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> A.Compose:
    """Evaluation transform: resize (or keep size if ``None``), normalise, to tensor."""
    ops = ([_resize(size)] if size else []) + [A.Normalize(mean=mean, std=std), ToTensorV2()]
    return A.Compose(ops, additional_targets={k: "mask" for k in EXTRA_MASK_TARGETS})
