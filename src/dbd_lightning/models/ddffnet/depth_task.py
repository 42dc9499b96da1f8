"""LightningModule for the offline depth teacher (a depth net trained on synthetic depth GT)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...tasks.base import Task


class DepthTask(Task):
    """Train a monocular depth network on ``batch['depth']`` (B,1,H,W) in [0, 1].

    Logs ``train/loss``, ``val/<dataset>/{loss,mae,rmse}`` and the same under
    ``test/`` (``mae`` = mean absolute depth error, so ``data.monitor`` of the
    detection runs selects the best checkpoint here too).

    Args:
        net: e.g. :class:`~dbd_lightning.models.ddffnet.depth_net.DepthNet` (returns ``depth``).
        depth_loss: e.g. :class:`~dbd_lightning.models.ddffnet.depth_losses.DepthLoss`.
        optimizer / scheduler / scheduler_interval: as in :class:`~dbd_lightning.tasks.base.Task`.
    """

    def __init__(
        self,
        net: nn.Module,
        depth_loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__(net, optimizer, scheduler, scheduler_interval)
        self.depth_loss = depth_loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.depth_loss(self.net(batch["image"]), batch)
        self.log_train_terms(terms, batch["image"].shape[0])
        return terms["loss"]

    def _eval_step(self, batch: dict, stage: str, dataloader_idx: int) -> None:
        name = self.dataset_name(stage, dataloader_idx)
        outputs = self.net(batch["image"])
        terms = self.depth_loss(outputs, batch)
        pred, gt = outputs["depth"], batch["depth"].float()
        if pred.shape[-2:] != gt.shape[-2:]:
            pred = F.interpolate(pred, size=gt.shape[-2:], mode="bilinear", align_corners=False)
        bs = gt.shape[0]
        kw = dict(batch_size=bs, add_dataloader_idx=False, sync_dist=True)
        self.log(f"{stage}/{name}/loss", terms["loss"], **kw)
        self.log(f"{stage}/{name}/mae", (pred - gt).abs().mean(), **kw)
        self.log(f"{stage}/{name}/rmse", (pred - gt).pow(2).mean().sqrt(), **kw)

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, "val", dataloader_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, "test", dataloader_idx)
