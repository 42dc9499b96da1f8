"""Stage 2 of D-DFFNet: a fresh student trained with feature distillation (eq. 3 and 8)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ...tasks.detection import DetectionTask
from .feature_loss import FeatureDistillationLoss
from .projectors import ProjectorBank


class DistillationTask(DetectionTask):
    """``l = l_d^f + sum_k alpha_k l_d^k + beta * l_f`` (eq. 8).

    The detection part (``loss``) is the usual deeply supervised loss; ``l_f``
    (eq. 3) compares the student's projected encoder features with each frozen
    teacher's. The teachers are **not** held here: the
    :class:`~dbd_lightning.models.ddffnet.callback.Distillation` callback runs them and puts
    their outputs in ``batch["teacher"]``; it also sets ``self.beta`` each epoch
    (eq. 9). The projectors (1x1, no bias, xavier-normal, one per teacher and
    level) are trainable student-side modules: saved in the checkpoint and
    optimised in their own param group (paper: Adam lr 0.1, weight decay 5e-4,
    constant; the scheduler never changes that group).

    Args (beyond :class:`DetectionTask`):
        teachers: teacher name -> its channels per level (``None`` = the student's, C -> C).
        feature_loss: the ``l_f`` module (default :class:`FeatureDistillationLoss`).
        beta: initial beta (the callback overrides it each epoch).
        projector_lr / projector_weight_decay: the projectors' param group.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        metrics: Mapping[str, Any] | None = None,
        log_images: int = 4,
        teachers: Mapping[str, Sequence[int] | None] | None = None,
        feature_loss: nn.Module | None = None,
        beta: float = 3.0,
        projector_lr: float = 0.1,
        projector_weight_decay: float = 5e-4,
    ) -> None:
        super().__init__(net, loss, optimizer, scheduler, scheduler_interval, metrics, log_images)
        teachers = dict(teachers) if teachers is not None else {"defocus": None, "depth": None}
        self.projectors = ProjectorBank(net.encoder.channels, teachers)
        self.feature_loss = feature_loss if feature_loss is not None else FeatureDistillationLoss()
        self.beta = float(beta)
        self.projector_lr = float(projector_lr)
        self.projector_weight_decay = float(projector_weight_decay)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        teacher = batch.get("teacher")
        if not teacher:
            raise RuntimeError(
                "DistillationTask got no teacher outputs: add the distillation callback "
                "(experiment=ddffnet_stage2 sets callbacks.distillation)"
            )
        outputs = self.net(batch["image"])
        terms = dict(self.loss(outputs, batch))
        projected = self.projectors.project(outputs["features"])
        missing = sorted(set(projected) - set(teacher))
        if missing:
            raise RuntimeError(f"no outputs for teachers {missing} in batch['teacher'] (have {sorted(teacher)})")
        l_f, per_teacher = self.feature_loss(projected, {n: teacher[n]["features"] for n in projected})
        terms["loss"] = terms["loss"] + self.beta * l_f
        bs = batch["image"].shape[0]
        self.log_train_terms(terms, bs)
        self.log("train/feature", l_f, batch_size=bs)
        self.log_dict({f"train/feature_{n}": v for n, v in per_teacher.items()}, batch_size=bs)
        self.log("train/beta", self.beta, batch_size=bs)
        return terms["loss"]

    def optimizer_params(self) -> list[dict]:
        """Two groups: the student ``net`` and the projectors at their own constant lr / weight decay."""
        return [
            {"params": [p for p in self.net.parameters() if p.requires_grad], "name": "net"},
            {"params": list(self.projectors.parameters()), "lr": self.projector_lr,
             "weight_decay": self.projector_weight_decay, "name": "projectors"},
        ]

    def lr_scheduler_step(self, scheduler, metric) -> None:
        """Step the scheduler, then pin the projector group back to its constant lr."""
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)
        for group in scheduler.optimizer.param_groups:
            if group.get("name") == "projectors":
                group["lr"] = self.projector_lr
