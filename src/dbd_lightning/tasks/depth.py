"""LightningModule for the offline depth teacher (a depth net trained on synthetic depth GT)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


class DepthTask(L.LightningModule):
    """Train a monocular depth network on ``batch['depth']`` (B,1,H,W) in [0, 1].

    Logs ``train/loss``, ``val/<dataset>/{loss,mae,rmse}`` and the same under
    ``test/`` (``mae`` = mean absolute depth error, so ``data.monitor`` of the
    detection runs selects the best checkpoint here too).

    Args:
        net: e.g. :class:`~dbd_lightning.models.ddffnet.depth_net.DepthNet` (returns ``depth``).
        depth_loss: e.g. :class:`~dbd_lightning.models.ddffnet.depth_losses.DepthLoss`.
        optimizer / scheduler / scheduler_interval: as in :class:`DetectionTask`.
        loss / metrics / log_images: injected by ``build_task`` for every model;
            the detection loss and DBD metric convention do not apply and are ignored.
    """

    def __init__(
        self,
        net: nn.Module,
        depth_loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        scheduler_interval: str = "epoch",
        loss: nn.Module | None = None,
        metrics: Mapping[str, Any] | None = None,
        log_images: int = 0,
    ) -> None:
        super().__init__()
        del loss, metrics, log_images
        self.net = net
        self.depth_loss = depth_loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval

    def forward(self, image: torch.Tensor) -> dict:
        return self.net(image)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.depth_loss(self.net(batch["image"]), batch)
        bs = batch["image"].shape[0]
        self.log("train/loss", terms["loss"], prog_bar=True, batch_size=bs)
        self.log_dict({f"train/{k}": v for k, v in terms.items() if k != "loss"}, batch_size=bs)
        return terms["loss"]

    def _eval_step(self, batch: dict, stage: str, dataloader_idx: int) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        names = getattr(dm, f"{stage}_names", []) if dm is not None else []
        name = names[dataloader_idx] if dataloader_idx < len(names) else f"set{dataloader_idx}"
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

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=[p for p in self.net.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}
