"""Base LightningModule of every task: optimizer + scheduler construction and the shared logging.

A task holds the torch network (``net``, which knows nothing of Lightning) and the
optimizer / scheduler factories from the config (``_partial_: true``, the groups
``conf/optimizer`` and ``conf/scheduler``). Subclasses write the steps; they choose which
parameters are optimised by overriding :meth:`Task.optimizer_params`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import lightning as L
import torch
from torch import nn

from ..utils.param_groups import build_param_groups


class Task(L.LightningModule):
    """Args:
        net: the torch model.
        optimizer: partial optimizer ``(params) -> Optimizer``.
        scheduler: optional partial scheduler ``(optimizer) -> LRScheduler``.
        scheduler_interval: ``"epoch"`` (the papers' schedules) or ``"step"``.
        param_groups: optional per-name-pattern optimizer groups of ``net``, e.g.
            ``[{match: "streams.*.trunk.*", lr: 1e-4}]`` (see :mod:`..utils.param_groups`).

    ``trains_on`` names the batches a task's steps read: ``"images"`` (an image with its
    map: mask or depth, the DBD data configs) or ``"edge_patches"`` (Karaali's patch
    classifiers); the config check refuses a data config of the other sort.
    """

    trains_on: ClassVar[str] = "images"

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        param_groups: list[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self.param_groups = [dict(g) for g in param_groups or []]

    def forward(self, image: torch.Tensor):
        return self.net(image)

    # ---------------------------------------------------------------- logging
    def dataset_name(self, stage: str, dataloader_idx: int) -> str:
        """The datamodule's name of evaluation set ``dataloader_idx`` (``set<i>`` when it has none)."""
        dm = getattr(self.trainer, "datamodule", None)
        names = getattr(dm, f"{stage}_names", []) if dm is not None else []
        return names[dataloader_idx] if dataloader_idx < len(names) else f"set{dataloader_idx}"

    def log_train_terms(self, terms: Mapping[str, torch.Tensor], batch_size: int) -> None:
        """``train/loss`` (progress bar) and every other loss term as ``train/<term>``."""
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in terms.items() if k != "loss"}, batch_size=batch_size)

    # -------------------------------------------------------------- optimiser
    def optimizer_params(self) -> Iterable:
        """What the optimizer gets: ``param_groups`` of ``net`` when given, else its trainable parameters."""
        if self.param_groups:
            return build_param_groups(self.net.named_parameters(), self.param_groups)
        return [p for p in self.net.parameters() if p.requires_grad]

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.optimizer_params())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}
