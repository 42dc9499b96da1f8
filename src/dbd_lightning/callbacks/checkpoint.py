"""``ModelCheckpoint`` that honours ``fast_dev_run`` at the end of training too.

Lightning documents that ``fast_dev_run`` disables checkpointing, and every save
path of its ``ModelCheckpoint`` checks for it except ``on_train_end`` (2.6.6),
which writes ``last.ckpt`` when ``save_last`` is on. For a paper-size model that
is a 0.5-1 GB file per smoke run (ResNeSt-101 weights + Adam state), so a sweep
of ``++trainer.fast_dev_run=true`` checks fills a disk. The class keeps its
parent's name so the callback's state key in checkpoints
(``ModelCheckpoint{'monitor': ..., 'mode': ...}``) is unchanged.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint


class ModelCheckpoint(_LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint``; no ``last.ckpt`` at the end of a ``fast_dev_run``."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        super().on_train_end(trainer, pl_module)
