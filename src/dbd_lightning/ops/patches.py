"""Multi-scale edge patches (Karaali et al., Sec. III-A) by one gather, no per-pixel loop.

A 41x41 RGB patch is taken around each pixel of a list from the image reflect-padded
by 20 (NumPy/torch ``reflect`` mode, values in [0, 1], no mean subtraction); the 27x27
and 15x15 patches are crops of it (done inside the networks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["reflect_pad", "extract_patches", "PATCH_PAD"]

PATCH_PAD = 20


def reflect_pad(image: torch.Tensor, pad: int = PATCH_PAD) -> torch.Tensor:
    """Reflect-pad a ``(B, C, H, W)`` image by ``pad`` on every side."""
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {tuple(image.shape)}")
    if min(image.shape[-2:]) <= pad:
        raise ValueError(f"image {image.shape[-1]}x{image.shape[-2]} (WxH) is too small: reflect padding by "
                         f"{pad} needs both sides > {pad} px")
    return F.pad(image, (pad, pad, pad, pad), mode="reflect")


def extract_patches(padded: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, size: int = 2 * PATCH_PAD + 1,
                    pad: int = PATCH_PAD) -> torch.Tensor:
    """``(N, C, size, size)`` patches centred at pixels ``(ys, xs)`` of batch item 0 of a ``pad``-padded image."""
    if ys.shape != xs.shape or ys.dim() != 1:
        raise ValueError(f"ys and xs must be 1-D of equal length, got {tuple(ys.shape)} and {tuple(xs.shape)}")
    start = pad - size // 2
    off = torch.arange(size, device=padded.device)
    rows = (ys.to(padded.device)[:, None] + start + off)[:, :, None]
    cols = (xs.to(padded.device)[:, None] + start + off)[:, None, :]
    return padded[0][:, rows, cols].permute(1, 0, 2, 3).contiguous()
