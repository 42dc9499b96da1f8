"""Multi-scale edge patches (Karaali et al., Sec. III-A) by one gather, no per-pixel loop.

A 41x41 RGB patch is taken around each pixel of a list from the image padded by 20
(values in [0, 1], no mean subtraction); the 27x27 and 15x15 patches are crops of it
(done inside the networks).

Border modes (``border``):

* ``"reflect"`` (ours, default): mirror without repeating the edge pixel, ``d c b | a b c d``
  (NumPy / torch ``reflect``, OpenCV ``BORDER_REFLECT_101``);
* ``"symmetric"``: mirror repeating the edge pixel, ``c b a | a b c d`` (NumPy ``symmetric``,
  OpenCV ``BORDER_REFLECT``: the authors' released code, ``cv2.copyMakeBorder``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["reflect_pad", "extract_patches", "PATCH_PAD", "BORDERS"]

PATCH_PAD = 20
BORDERS = ("reflect", "symmetric")


def _symmetric_index(n: int, pad: int, device) -> torch.Tensor:
    """Source index of each of the ``n + 2 pad`` padded positions, edge pixel repeated (``pad <= n``)."""
    i = torch.arange(-pad, n + pad, device=device)
    return torch.where(i < 0, -i - 1, torch.where(i >= n, 2 * n - 1 - i, i))


def reflect_pad(image: torch.Tensor, pad: int = PATCH_PAD, border: str = "reflect") -> torch.Tensor:
    """Pad a ``(B, C, H, W)`` image by ``pad`` on every side, mirrored (``border``: see the module docstring)."""
    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {tuple(image.shape)}")
    if min(image.shape[-2:]) <= pad:
        raise ValueError(f"image {image.shape[-1]}x{image.shape[-2]} (WxH) is too small: {border} padding by "
                         f"{pad} needs both sides > {pad} px")
    if border == "reflect":
        return F.pad(image, (pad, pad, pad, pad), mode="reflect")
    # torch has no symmetric mode: one gather per axis (by hand; F.pad / kornia offer reflect and replicate only)
    h, w = image.shape[-2:]
    rows, cols = _symmetric_index(h, pad, image.device), _symmetric_index(w, pad, image.device)
    return image.index_select(-2, rows).index_select(-1, cols)


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
