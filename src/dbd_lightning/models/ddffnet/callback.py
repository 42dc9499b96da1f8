"""The distillation callback: owns the frozen teachers and the beta schedule (D-DFFNet eq. 8-9)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import lightning as L
import torch

from .schedules import beta_at
from .teachers import FrozenTeacher

log = logging.getLogger(__name__)


class Distillation(L.Callback):
    """Run frozen teachers on every training batch and set beta from a named schedule.

    The teachers live here, outside the LightningModule: they are never in its
    ``state_dict`` (so never in the student's checkpoint), never in an optimizer,
    and Lightning's ``module.train()`` never reaches them. They are put in eval
    mode with ``requires_grad_(False)`` and run under ``torch.no_grad()``.

    On each training batch their outputs are added to the batch as
    ``batch["teacher"][name] = {"features": [...], "depth": ...}`` for the task
    and the loss to read. At the start of every training epoch ``pl_module.beta``
    (when the module has one) is set to ``beta_at(schedule, current_epoch)``: a
    pure function of the epoch, so a resumed run gets the same beta.

    Args:
        teachers: name -> :class:`FrozenTeacher` (Hydra builds them from ``conf/teacher``).
        beta_schedule: ``paper`` (eq. 9), ``authors_code``, ``constant`` or ``None`` (leave beta alone).
        beta_max / switch_epoch / last_epoch: the schedule's constants (3, 15, 75).
    """

    def __init__(
        self,
        teachers: Mapping[str, FrozenTeacher],
        beta_schedule: str | None = "paper",
        beta_max: float = 3.0,
        switch_epoch: int = 15,
        last_epoch: int = 75,
    ) -> None:
        super().__init__()
        self.teachers: dict[str, FrozenTeacher] = dict(teachers)
        for name, teacher in self.teachers.items():
            if not isinstance(teacher, FrozenTeacher):
                raise TypeError(f"teacher {name!r} is a {type(teacher).__name__}, not a FrozenTeacher")
        self.beta_schedule = beta_schedule
        self.beta_max, self.switch_epoch, self.last_epoch = float(beta_max), int(switch_epoch), int(last_epoch)
        if beta_schedule is not None:
            beta_at(beta_schedule, 0)  # fail early on an unknown name

    # ---------------------------------------------------------------- helpers
    def beta(self, epoch: int) -> float:
        return beta_at(self.beta_schedule, epoch, self.beta_max, self.switch_epoch, self.last_epoch)

    def _freeze(self, device: torch.device | None = None) -> None:
        for teacher in self.teachers.values():
            teacher.freeze()
            if device is not None:
                teacher.to(device)

    @torch.no_grad()
    def teacher_outputs(self, image: torch.Tensor) -> dict[str, dict]:
        out = {}
        for name, teacher in self.teachers.items():
            if teacher.training:  # cannot happen through FrozenTeacher.train; guard anyway
                teacher.freeze()
            out[name] = teacher(image)
        return out

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._freeze()
        projectors = getattr(pl_module, "projectors", None)
        if projectors is None:
            return
        for name in projectors:
            if name not in self.teachers:
                raise ValueError(f"the task has projectors for teacher {name!r} but the callback has "
                                 f"only {sorted(self.teachers)}")
            want, have = projectors.teacher_channels(name), self.teachers[name].channels
            if have and list(want) != list(have):
                raise ValueError(f"teacher {name!r} has channels {have} but its projectors map to {want}; "
                                 f"set model.teachers.{name}={have}")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._freeze(pl_module.device)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.beta_schedule is not None and hasattr(pl_module, "beta"):
            pl_module.beta = self.beta(trainer.current_epoch)
            log.debug("epoch %d: beta = %.4f", trainer.current_epoch, pl_module.beta)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        image = batch["image"]
        for teacher in self.teachers.values():
            param = next(teacher.parameters(), None)
            if param is not None and param.device != image.device:
                teacher.to(image.device)
        batch["teacher"] = self.teacher_outputs(image)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # Teachers are not registered in the module, so this is only a guard.
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith("teacher")]:
            del state[key]
