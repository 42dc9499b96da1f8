"""Reading an authors' released PyTorch weight file (shared by the DD and D-DFFNet converters).

``torch.load(..., weights_only=True)``: tensors and plain containers only, nothing is executed
(a missing, empty, truncated or foreign file, or one holding Python objects, is a
:class:`~dbd_lightning.models.conversion.errors.ConvertError` naming it). A ``state_dict`` / ``model`` / ``net``
wrapper is unwrapped and a ``module.`` prefix (``nn.DataParallel``) is stripped. A checkpoint this
suite wrote (it already has our names) is refused with the advice to use it directly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...utils.checkpoint import read_checkpoint
from ...utils.errors import CheckpointError
from .errors import SOURCE_FIX, ConvertError

#: keys only this suite's checkpoints have (Lightning's, our run record, the converters' own mark)
OWN_MARKS = ("dbd_run", "pytorch-lightning_version", "written_by")


def load_authors_state(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        obj = read_checkpoint(path, key="SRC", fix=SOURCE_FIX)
    except CheckpointError as exc:
        raise ConvertError(exc.message) from None
    if isinstance(obj, dict) and any(k in obj for k in OWN_MARKS):
        raise ConvertError(f"SRC={path} is a checkpoint of this suite (already in our names), not an authors' "
                           "file: it needs no conversion; use it directly (ckpt=, test_ckpt=, model.net.init_ckpt=, "
                           "teacher.defocus.ckpt=)")
    for key in ("state_dict", "model", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConvertError(f"SRC={path} holds no tensor state dict (a {type(obj).__name__}); {SOURCE_FIX}")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}
