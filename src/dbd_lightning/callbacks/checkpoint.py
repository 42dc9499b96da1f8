"""``ModelCheckpoint`` whose ``last.ckpt`` is always the latest epoch, and none under ``fast_dev_run``.

Two fixes of Lightning's (2.6.6) ``ModelCheckpoint``, whose name the class keeps so the callback's
state key in checkpoints (``ModelCheckpoint{'monitor': ..., 'mode': ...}``) is unchanged:

* ``last.ckpt`` is rewritten at the end of *every* epoch. Lightning rewrites it only when a top-k
  checkpoint was saved at the same step, so an epoch that is not among the best left ``last.ckpt``
  at an older epoch: ``eval ckpt=last`` evaluated that older epoch and a resume re-trained epochs it
  had already done.
* ``fast_dev_run`` disables checkpointing, and every save path checks for it except
  ``on_train_end``, which writes ``last.ckpt`` when ``save_last`` is on: for a paper-size model a
  0.5-1 GB file per smoke run.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint


class ModelCheckpoint(_LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with ``last.ckpt`` = the end of the latest epoch (module docstring)."""

    def _last_is_current(self, trainer: L.Trainer) -> bool:
        return self._last_global_step_saved == trainer.global_step

    def _save_last_if_stale(self, trainer: L.Trainer) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer) or self._last_is_current(trainer):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_stale(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer) and not trainer.sanity_checking:
            self._save_last_if_stale(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        super().on_train_end(trainer, pl_module)
