"""Reading an authors' released PyTorch weight file (shared by the DD and D-DFFNet converters).

``torch.load(..., weights_only=True)``: tensors and plain containers only, nothing is executed.
A ``state_dict`` / ``model`` / ``net`` wrapper is unwrapped and a ``module.`` prefix
(``nn.DataParallel``) is stripped.
"""

from __future__ import annotations

from pathlib import Path

import torch


def load_authors_state(path: str | Path) -> dict[str, torch.Tensor]:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RuntimeError(f"{path} holds no tensor state dict")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}
