"""``ModelCheckpoint`` whose ``last.ckpt`` is always the latest epoch, whose run folder can be moved or
copied, and which writes nothing under ``fast_dev_run``.

Fixes of Lightning's (2.6.6) ``ModelCheckpoint``, whose name the class keeps so the callback's
state key in checkpoints (``ModelCheckpoint{'monitor': ..., 'mode': ...}``) is unchanged:

* ``last.ckpt`` is rewritten at the end of *every* epoch. Lightning rewrites it only when a top-k
  checkpoint was saved at the same step, so an epoch that is not among the best left ``last.ckpt``
  at an older epoch: ``eval ckpt=last`` evaluated that older epoch and a resume re-trained epochs it
  had already done.
* Relocatable runs. The state stored in a checkpoint holds absolute paths (``best_model_path``,
  ``best_k_models``, ``kth_best_model_path``, ``last_model_path``). Lightning restores them only when
  ``dirpath`` is unchanged, and ``best_model_path`` always: a copied run (``cp -a run copy``) resumed
  with ``run_dir=copy`` tested the *original* folder's best checkpoint after fit, kept an extra
  ``epoch_*.ckpt`` and wrote ``last-v1.ckpt`` beside ``last.ckpt``. Here, when the checkpoint being
  resumed lies in this callback's ``dirpath`` (or was written there), every recorded path is looked up
  by file name in ``dirpath`` (:func:`relocated_state`; entries whose file is not there are dropped);
  a checkpoint of another folder restores no paths at all. The same rule as
  :func:`dbd_lightning.runs.resolver.find_checkpoint` uses for ``best``.
* The epoch-end saves (top-k checkpoint, removal of the one it replaces, ``last.ckpt``) run as one
  unit: a Ctrl-C / SIGTERM arriving in between is acted on after them
  (:func:`dbd_lightning.utils.interrupts.deferred_interrupts`), so ``last.ckpt`` and the best
  checkpoint it records always belong to one finished epoch.
* ``fast_dev_run`` disables checkpointing, and every save path checks for it except
  ``on_train_end``, which writes ``last.ckpt`` when ``save_last`` is on: for a paper-size model a
  0.5-1 GB file per smoke run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint

from ..utils.interrupts import deferred_interrupts

log = logging.getLogger(__name__)


def relocated_state(state: dict[str, Any], folder: Path, mode: str) -> dict[str, Any]:
    """``state`` (a ModelCheckpoint state dict) with every recorded checkpoint path moved into ``folder``
    by file name; entries whose file is not in ``folder`` are dropped and the best / k-th best are
    chosen again from what is left (``mode``: ``min`` | ``max``)."""

    def local(path: Any) -> str:
        candidate = folder / Path(str(path)).name if path else None
        return str(candidate) if candidate is not None and candidate.is_file() else ""

    best_k = {local(p): v for p, v in (state.get("best_k_models") or {}).items() if local(p)}
    better, worse = (min, max) if mode == "min" else (max, min)
    best = local(state.get("best_model_path"))
    score = state.get("best_model_score")
    if best_k and best not in best_k:  # the recorded best is gone: the best of the others
        best = better(best_k, key=best_k.get)
        score = best_k[best]
    elif not best:
        score = None
    out = dict(state, dirpath=str(folder), best_k_models=best_k, best_model_path=best, best_model_score=score)
    if best_k:
        kth = worse(best_k, key=best_k.get)
        out.update(kth_best_model_path=kth, kth_value=best_k[kth])
    else:
        out.pop("kth_best_model_path", None)
        out.pop("kth_value", None)
    last = state.get("last_model_path")
    out["last_model_path"] = str(folder / Path(str(last)).name) if last else ""
    return out


class ModelCheckpoint(_LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` with ``last.ckpt`` = the end of the latest epoch and paths kept
    inside its own ``dirpath`` (module docstring)."""

    _resumed_from: str | None = None

    def _last_is_current(self, trainer: L.Trainer) -> bool:
        return self._last_global_step_saved == trainer.global_step

    def _save_last_if_stale(self, trainer: L.Trainer) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer) or self._last_is_current(trainer):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        with deferred_interrupts():
            super().on_train_batch_end(trainer, pl_module, *args, **kwargs)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with deferred_interrupts():
            super().on_train_epoch_end(trainer, pl_module)
            if self._should_save_on_train_epoch_end(trainer):
                self._save_last_if_stale(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with deferred_interrupts():
            super().on_validation_end(trainer, pl_module)
            if not self._should_save_on_train_epoch_end(trainer) and not trainer.sanity_checking:
                self._save_last_if_stale(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        super().on_train_end(trainer, pl_module)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        # called just before load_state_dict: remember which file is being resumed
        self._resumed_from = str(trainer.ckpt_path) if trainer.ckpt_path else None

    def _resumes_own_folder(self, recorded_dirpath: Any) -> bool:
        """The resumed checkpoint belongs to this ``dirpath``: it lies there (a moved / copied run
        resumed in place) or was written there (same folder, e.g. a SLURM ``hpc`` checkpoint)."""
        own = Path(str(self.dirpath)).resolve()
        if recorded_dirpath is not None and Path(str(recorded_dirpath)).resolve() == own:
            return True
        return self._resumed_from is not None and Path(self._resumed_from).resolve().parent == own

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.dirpath is None or "://" in str(self.dirpath):  # remote storage: Lightning's behaviour
            return super().load_state_dict(state_dict)
        recorded = state_dict.get("dirpath")
        if not self._resumes_own_folder(recorded):
            log.info("resuming from %s, a checkpoint of another folder: its best / last checkpoint records are "
                     "not carried into %s", self._resumed_from, self.dirpath)
            return
        state = relocated_state(state_dict, Path(str(self.dirpath)), self.mode)
        if recorded is not None and str(recorded) != str(self.dirpath):
            log.info("run folder moved or copied: checkpoints recorded in %s are looked up by file name in %s",
                     recorded, self.dirpath)
        self.best_model_score = state["best_model_score"]
        self.best_model_path = state["best_model_path"]
        self.best_k_models = state["best_k_models"]
        self.kth_best_model_path = state.get("kth_best_model_path", "")
        self.kth_value = state.get("kth_value", self.kth_value)
        self.last_model_path = state["last_model_path"]
