"""Writing a converted checkpoint: atomically, and never over a file the converters did not write.

Every file a converter writes carries ``"written_by": "dbd_lightning.convert"`` next to its
``state_dict`` (read back with ``weights_only=True``). An existing destination is replaced only when
it carries that mark; anything else (a user's checkpoint, a training run's ``last.ckpt``, a folder,
a symbolic link) stops the converter before it writes, naming the file and the fix (exit 2). The file
goes through :func:`~dbd_lightning.utils.checkpoint_io.atomic_torch_save` (temporary file, fsync,
rename): an interrupted or disk-full conversion leaves no half-written checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ...utils.checkpoint_io import atomic_torch_save
from .errors import ConvertError

MARKER = "dbd_lightning.convert"


def written_by_convert(path: Path) -> bool:
    """``path`` is a regular file holding the converters' mark (read safely; unreadable = not ours)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 -- unreadable or foreign: not the converters'
        return False
    return isinstance(obj, dict) and obj.get("written_by") == MARKER


def refuse_foreign(path: str | Path) -> Path:
    """Stop when ``path`` exists and a converter did not write it (before any conversion work is saved)."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not written_by_convert(path):
        what = "a folder" if path.is_dir() else "a file that dbd_lightning.convert did not write"
        raise ConvertError(f"DST={path} is {what}; the converters never overwrite files they did not write: "
                           "choose another destination, or move that file away yourself")
    return path


def save_converted(obj: dict, path: str | Path) -> Path:
    """``obj`` (a ``{"state_dict": ...}`` dict) plus the converters' mark, atomically at ``path``."""
    path = refuse_foreign(path)
    atomic_torch_save({**obj, "written_by": MARKER}, path)
    return path
