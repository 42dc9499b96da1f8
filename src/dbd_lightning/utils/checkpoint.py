"""Safe checkpoint loading: tensors and plain containers only (``weights_only=True``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (or a bare state dict), loaded safely."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":  # released models (dbd_lightning.zoo): tensors only, by format
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise RuntimeError(f"cannot read {path} as safetensors: {exc}") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refused or corrupt file: never fall back to unsafe loading
        raise RuntimeError(f"cannot load checkpoint {path} with weights_only=True: {exc}") from exc
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RuntimeError(f"{path} holds no tensor state dict")
    return state


def load_weights(module: nn.Module, path: str | Path, strict: bool = True, prefix: str | None = None) -> None:
    """Load a checkpoint's weights into ``module`` with a clear report of mismatched keys.

    ``prefix`` (e.g. ``"net."``): load only the keys under it, stripped, so the
    torch model inside a Lightning checkpoint loads into a bare network. A
    state dict with no key under ``prefix`` (a bare network's) is used as is.
    """
    state = load_state_dict(path)
    if prefix and any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if strict and (missing or unexpected or shape):
        raise RuntimeError(
            f"checkpoint {path} does not match the model built from the config:\n"
            f"  missing keys ({len(missing)}): {missing[:8]}\n"
            f"  unexpected keys ({len(unexpected)}): {unexpected[:8]}\n"
            f"  shape mismatches ({len(shape)}): {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in shape[:8]]}"
        )
    module.load_state_dict(state, strict=strict)
