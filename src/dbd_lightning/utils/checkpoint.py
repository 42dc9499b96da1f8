"""Safe checkpoint loading: tensors and plain containers only (``weights_only=True``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path that does not exist."""


#: the fix a message about an unreadable checkpoint gives by default
TRAIN_CHECKPOINT_FIX = "use a checkpoint written by python -m dbd_lightning.train (<run>/checkpoints/*.ckpt)"


def read_checkpoint(path: str | Path, key: str = "checkpoint", mmap: bool = False,
                    fix: str = TRAIN_CHECKPOINT_FIX) -> object:
    """``torch.load(path, weights_only=True)`` with a clear :class:`CheckpointError` for a missing, empty,
    truncated or foreign file, or one holding Python objects (refused: loading them could run code);
    ``fix`` is the advice that ends the message (the converters name the authors' files instead).

    The message never suggests ``weights_only=False``: nothing from a checkpoint is executed.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "does not exist"
        advice = ("pass the path of a .ckpt file written by python -m dbd_lightning.train (<run>/checkpoints/*.ckpt)"
                  if fix == TRAIN_CHECKPOINT_FIX else fix)
        raise CheckpointNotFoundError(f"{key}={path} {what}; {advice}")
    size = path.stat().st_size
    if size == 0:
        advice = ("the run that wrote it was probably killed while saving; use another checkpoint of the run "
                  "(e.g. checkpoints/last.ckpt or epoch_*.ckpt)" if fix == TRAIN_CHECKPOINT_FIX else fix)
        raise CheckpointError(f"{key}={path} is empty (0 bytes): {advice}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # pickle refused or corrupt file: never fall back to unsafe loading
        text = str(exc)
        low = text.lower()
        with open(path, "rb") as fh:  # torch files are zip archives ("PK") or legacy pickles (0x80)
            magic = fh.read(2)
        if not (magic == b"PK" or magic[:1] == b"\x80"):
            reason = f"it is not a PyTorch checkpoint or it is truncated ({size} bytes)"
        elif "global" in low and ("unsupported" in low or "blocked" in low):
            reason = ("it holds Python objects besides tensors and plain containers, which are refused (checkpoints "
                      "load with weights_only=True: loading such objects could run code)")
        elif any(k in low for k in ("zip", "magic number", "invalid load key", "unsupported operand", "eof",
                                     "unpickler", "central directory")):
            reason = f"it is not a PyTorch checkpoint or it is truncated ({size} bytes)"
        else:
            reason = f"it cannot be read ({type(exc).__name__}: {text.splitlines()[0][:200] if text else 'no reason given'})"
        raise CheckpointError(f"{key}={path}: {reason}; {fix}") from None


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (or a bare state dict), loaded safely."""
    path = Path(path).expanduser()
    if path.suffix == ".safetensors" and path.is_file():  # released models (dbd_lightning.zoo): tensors only
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read {path} as safetensors ({exc}); reinstall or re-release it") from None
    obj = read_checkpoint(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no tensor state dict (not a model checkpoint)")
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
        raise CheckpointError(
            f"checkpoint {path} does not match the model built from the config:\n"
            f"  missing keys ({len(missing)}): {missing[:8]}\n"
            f"  unexpected keys ({len(unexpected)}): {unexpected[:8]}\n"
            f"  shape mismatches ({len(shape)}): {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in shape[:8]]}"
        )
    module.load_state_dict(state, strict=strict)
