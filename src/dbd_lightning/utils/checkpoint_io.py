"""Crash-safe checkpoint writes: a Lightning ``CheckpointIO`` that never leaves a half-written file.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction whose
local temporary file lives in the system temp folder; committing it is a
``shutil.move`` that becomes copy + delete when that folder is on another
filesystem (not atomic), and nothing is fsynced, so a crash or power loss can
leave a truncated ``last.ckpt``. :class:`AtomicCheckpointIO` writes a hidden
temporary file in the destination folder, fsyncs it, renames it over the target
with ``os.replace`` (atomic on POSIX and Windows within one filesystem) and
fsyncs the folder (the shared helper :mod:`dbd_lightning.utils.atomic`). A full
disk stops training with one line, ``error: disk full while writing <file>: ...``
(exit 2), never a zip-writer traceback. A crash at any point leaves either the old complete file or
the new complete file; a stale ``.<name>.partial-*`` file may remain after a
hard kill and is removed by the next save into that folder. Remote URLs
(``s3://`` ...) fall back to Lightning's implementation.

Wired from config: ``trainer.plugins`` in ``conf/trainer/default.yaml``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .atomic import PARTIAL_TAG, write_atomic

__all__ = ["PARTIAL_TAG", "AtomicCheckpointIO", "atomic_torch_save"]


def _is_local(path) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, fsync, then ``os.replace`` it onto ``path``.

    A full disk raises :class:`~dbd_lightning.utils.atomic.DiskFullError` (one-line user error, exit 2)
    instead of the zip writer's ``RuntimeError``; the previous checkpoint stays intact.
    """
    path = Path(str(path).removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}{PARTIAL_TAG}*"):  # left by a hard kill during a save
        with contextlib.suppress(OSError):
            stale.unlink()
    write_atomic(path, lambda f: torch.save(obj, f))


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with atomic local writes (see the module docstring)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        if not _is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        fs = get_filesystem(path)
        fs.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_torch_save(checkpoint, path)
