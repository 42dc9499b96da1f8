"""Image | GT | prediction grids for loggers."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import make_grid

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD


def denormalize(image: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Undo ImageNet normalisation of a (B,3,H,W) batch, clipped to [0,1]."""
    m = torch.tensor(mean, dtype=image.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(1, 3, 1, 1)
    return (image * s + m).clamp(0, 1)


def prediction_grid(image: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """One row per sample: image | GT (white = in focus) | predicted in-focus probability. (3,H,W) in [0,1]."""
    rows = []
    for img, gt, p in zip(denormalize(image), mask, pred, strict=True):
        rows += [img, gt.expand(3, -1, -1), p.expand(3, -1, -1)]
    return make_grid(torch.stack(rows), nrow=3, padding=2, pad_value=1.0)


def grid_to_uint8(grid: torch.Tensor) -> np.ndarray:
    """A (3,H,W) grid in [0,1] as the (H,W,3) uint8 picture in 0..255 that image loggers store.

    Loggers differ in what they do with floats: wandb (0.31) casts ``astype(uint8)`` without
    rescaling (a [0,1] grid becomes black), TensorBoard multiplies by 255. A uint8 array means
    the same to all of them. Rounded to the nearest grey level, so 0 and 1 stay exactly 0 and 255.
    """
    if grid.dim() != 3 or grid.shape[0] not in (1, 3):
        raise ValueError(f"grid must be (3, H, W) or (1, H, W), got {tuple(grid.shape)}")
    g = grid.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    return g.expand(3, -1, -1).permute(1, 2, 0).contiguous().numpy()


def log_image_to_loggers(loggers, key: str, image: np.ndarray, caption: str, step: int) -> int:
    """Send one (H,W,3) uint8 picture to every logger that takes images; returns how many took it.

    ``log_image`` (W&B and other loggers with that method) gets the uint8 array; a TensorBoard
    logger gets ``add_image(..., dataformats="HWC")``. Loggers without images (CSV) are skipped.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    n = 0
    for logger in loggers:
        if hasattr(logger, "log_image"):
            logger.log_image(key=key, images=[image], caption=[caption], step=step)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
            logger.experiment.add_image(key, image, global_step=step, dataformats="HWC")
        else:
            continue
        n += 1
    return n
