"""The callback that writes a run's model config and input size into each of its checkpoints.

What it writes and who reads it: :mod:`dbd_lightning.runs.run_meta` (kept free of Lightning,
so that eval / predict / export can check a checkpoint without importing it).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback

from ..runs.run_meta import CKPT_KEY


class RunMetaCheckpoint(Callback):
    """Writes :func:`~dbd_lightning.runs.run_meta.run_metadata` into every checkpoint (``checkpoint["dbd_run"]``)."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[CKPT_KEY] = self.meta
