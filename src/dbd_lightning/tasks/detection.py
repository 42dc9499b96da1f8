"""LightningModule shared by every DBD family (BTBNet, DD, DFFNet & co)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics import build_dbd_metrics
from .base import Task
from .visualize import grid_to_uint8, log_image_to_loggers, prediction_grid


class DetectionTask(Task):
    """Train/validate/test a defocus blur detection network.

    The network returns a dict with ``logits`` (in-focus logits at input size)
    and optionally ``side_logits`` and ``features``; ``loss`` maps
    ``(outputs, batch)`` to a dict of terms with the total under ``"loss"``.
    Validation/test predictions are resized (bilinear) to each image's original
    size and scored there by one metric collection per dataset.

    Args (beyond :class:`~.base.Task`: net, optimizer, scheduler, scheduler_interval, param_groups):
        loss: the loss module (``build_task`` builds it from the config's ``loss`` group).
        metrics: metric convention kwargs for :func:`build_dbd_metrics` (the ``metrics`` group).
        log_images: number of validation samples in the logged grid (0 = off).
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
        param_groups: list[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(net, optimizer, scheduler, scheduler_interval, param_groups)
        self.loss = loss
        self.metric_convention = dict(metrics or {})
        self.log_images = log_images
        self.val_metrics = nn.ModuleDict()
        self.test_metrics = nn.ModuleDict()
        self._grid_batches: dict[str, dict] = {}  # first validation batch of each dataset, for the image grids
        self._updated: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        # a logger that draws PR curves (DBDWandbLogger.log_pr_curve) gets one per test set
        test_curves = any(hasattr(lg, "log_pr_curve") for lg in self.loggers)
        for names, store, curve in ((getattr(dm, "val_names", []), self.val_metrics, False),
                                    (getattr(dm, "test_names", []), self.test_metrics, test_curves)):
            for name in names:
                if name not in store:
                    kwargs = {**self.metric_convention, "pr_curve": True} if curve else self.metric_convention
                    store[name] = build_dbd_metrics(**kwargs)

    # --------------------------------------------------------------- training
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        outputs = self.net(batch["image"])
        terms = self.loss(outputs, batch)
        self.log_train_terms(terms, batch["image"].shape[0])
        return terms["loss"]

    # ------------------------------------------------------------- evaluation
    @staticmethod
    def probabilities_at_original_size(logits: torch.Tensor, sizes) -> list[torch.Tensor]:
        """Sigmoid of each logit map resized (bilinear) to its image's original (H, W)."""
        probs = torch.sigmoid(logits.float())
        out = []
        for p, size in zip(probs, sizes, strict=True):
            size = tuple(int(s) for s in size)
            if tuple(p.shape[-2:]) != size:
                p = F.interpolate(p[None], size=size, mode="bilinear", align_corners=False)[0]
            out.append(p.clamp_(0, 1))
        return out

    def _eval_step(self, batch: dict, stage: str, store: nn.ModuleDict, idx: int) -> dict:
        name = self.dataset_name(stage, idx)
        outputs = self.net(batch["image"])
        terms = self.loss(outputs, batch)
        self.log(f"{stage}/{name}/loss", terms["loss"], batch_size=batch["image"].shape[0],
                 add_dataloader_idx=False, sync_dist=True)
        gts = batch["gt_full"]
        preds = self.probabilities_at_original_size(outputs["logits"], [g.shape[-2:] for g in gts])
        store[name].update(preds, [g.to(preds[0].device) for g in gts])
        self._updated.add((stage, name))
        return outputs

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        outputs = self._eval_step(batch, "val", self.val_metrics, dataloader_idx)
        if batch_idx == 0 and self.log_images:
            n = self.log_images
            self._grid_batches[self.dataset_name("val", dataloader_idx)] = {
                "image": batch["image"][:n].detach().cpu(),
                "mask": batch["mask"][:n].detach().cpu(),
                "pred": torch.sigmoid(outputs["logits"][:n]).detach().float().cpu(),
            }

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, "test", self.test_metrics, dataloader_idx)

    def _log_metrics(self, stage: str, store: nn.ModuleDict) -> None:
        for name, collection in store.items():
            if (stage, name) not in self._updated:
                continue
            self._updated.discard((stage, name))
            values = collection.compute()
            for key, value in values.items():
                if isinstance(value, torch.Tensor) and value.numel() == 1:
                    self.log(f"{stage}/{name}/{key}", value.float(), add_dataloader_idx=False)
            if stage == "test" and "pr_curve" in values and not self.trainer.sanity_checking:
                precision, recall, _ = values["pr_curve"]
                for logger in self.loggers:
                    if hasattr(logger, "log_pr_curve"):
                        logger.log_pr_curve(f"test/{name}/pr_curve", precision.tolist(), recall.tolist(),
                                            step=self.global_step)
            collection.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)
        for name, grid_batch in self._grid_batches.items():
            self._log_grid(grid_batch, key=f"val/{name}/predictions")
        self._grid_batches = {}

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        outputs = self.net(batch["image"])
        sizes = batch["orig_size"]
        return {"name": batch["name"], "prob": self.probabilities_at_original_size(outputs["logits"], sizes)}

    def _log_grid(self, grid_batch: dict, key: str = "val/predictions") -> None:
        if self.trainer.sanity_checking:
            return
        grid = grid_to_uint8(prediction_grid(**grid_batch))  # uint8 0..255: wandb does not rescale floats
        log_image_to_loggers(self.loggers, key, grid, "image | GT | prediction", self.global_step)
