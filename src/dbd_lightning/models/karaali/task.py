"""Patch classification LightningModule for Karaali's B-NET (23 blur levels) and E-NET (pattern/depth edge).

Paper Sec. IV-B: softmax cross-entropy, Adam, batch 256; B-NET lr 1e-3 divided by
10 every 10 epochs (75 epochs), E-NET the same with steps of 5 epochs (30 epochs)
and the f1-NET (B-NET's three streams) copied from a trained B-NET and frozen.
Optimizer and scheduler come from the config (``_partial_``).

Logged: ``{train,val,test}/patches/{loss,acc}``; for B-NET also ``radius_mae``
(mean |predicted - true| disk radius, px) and ``within1`` (share of predictions at
most one level = 0.25 px off).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...tasks.base import Task
from ...utils.checkpoint import load_weights
from .torch_model import BNet, ENet

log = logging.getLogger(__name__)

__all__ = ["KaraaliPatchTask"]


class KaraaliPatchTask(Task):
    """Args:
        net: :class:`BNet` or :class:`ENet`.
        optimizer, scheduler: partial factories (``scheduler`` may be None).
        bnet_ckpt: E-NET only: B-NET checkpoint whose streams become the f1-NET.
        freeze_f1: E-NET only: keep the f1-NET fixed (paper: True).
        radii: class -> disk radius (px) for the B-NET ``radius_mae`` metric.

    The loss is the paper's softmax cross-entropy (no ``loss`` group); the batches are
    41x41 edge patches with class labels (``trains_on = "edge_patches"``).
    """

    trains_on = "edge_patches"

    def __init__(self, net: nn.Module, optimizer: Callable, scheduler: Callable | None = None,
                 scheduler_interval: str = "epoch", bnet_ckpt: str | None = None, freeze_f1: bool = True,
                 radii: list[float] | None = None) -> None:
        super().__init__(net, optimizer, scheduler, scheduler_interval)
        # plain floats: Hydra passes a ListConfig, which a weights_only=True checkpoint load refuses
        radii = None if radii is None else [float(r) for r in radii]
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.radii = None if radii is None else torch.tensor(radii, dtype=torch.float32)
        if isinstance(net, ENet):
            if bnet_ckpt:
                bnet = BNet()
                load_weights(bnet, bnet_ckpt, prefix="net.")
                net.load_f1_from(bnet)
                log.info("E-NET f1-NET loaded from %s", bnet_ckpt)
            elif freeze_f1:
                log.warning("E-NET: no bnet_ckpt given, the frozen f1-NET keeps its random initialisation")
            if freeze_f1:
                net.f1.requires_grad_(False)
        elif bnet_ckpt:
            raise ValueError("bnet_ckpt is only used by E-NET (its f1-NET); the net here is "
                             f"{type(net).__name__}")

    def on_train_epoch_start(self) -> None:
        if isinstance(self.net, ENet) and not any(p.requires_grad for p in self.net.f1.parameters()):
            self.net.f1.eval()

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        x, y = batch["image"], batch["label"]
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        pred = logits.argmax(1)
        n = y.numel()
        on_step = stage == "train"
        self.log(f"{stage}/patches/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=n)
        self.log(f"{stage}/patches/acc", (pred == y).float().mean(), on_epoch=True, batch_size=n)
        if self.radii is not None and isinstance(self.net, BNet):
            radii = self.radii.to(x.device)
            self.log(f"{stage}/patches/radius_mae", (radii[pred] - radii[y]).abs().mean(), on_epoch=True,
                     batch_size=n)
            self.log(f"{stage}/patches/within1", ((pred - y).abs() <= 1).float().mean(), on_epoch=True,
                     batch_size=n)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")
