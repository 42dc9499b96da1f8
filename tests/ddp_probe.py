"""Test helper for the DDP / resume subprocess tests (imported by Lightning in every rank).

``DDPProbe`` records, per rank, what DDP must keep consistent (world size, beta per
epoch, teacher state, SyncBatchNorm conversion, the sample names of every step) into
``<out>/probe_rank<r>.json``. With ``freeze_bn`` it keeps BatchNorm layers in eval mode
during training: per-process BN statistics differ from single-process ones by design,
and torch's SyncBatchNorm (which would make them equal) runs on GPUs only.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
from torch import nn


class DDPProbe(L.Callback):
    def __init__(self, out: str, freeze_bn: bool = True) -> None:
        self.out, self.freeze_bn = Path(out), freeze_bn
        self.betas: dict[int, float] = {}
        self.names: list[list[str]] = []
        self.teachers: dict[str, dict] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.freeze_bn:
            for m in pl_module.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        if hasattr(pl_module, "beta"):
            self.betas[trainer.current_epoch] = float(pl_module.beta)
        self.names.append(list(batch["name"]))
        for cb in trainer.callbacks:
            if type(cb).__name__ != "Distillation":
                continue
            for name, teacher in cb.teachers.items():
                self.teachers[name] = {
                    "training": teacher.training,
                    "requires_grad": any(p.requires_grad for p in teacher.parameters()),
                    "device": str(next(teacher.parameters()).device),
                    "in_batch": name in batch.get("teacher", {}),
                }

    def on_train_end(self, trainer, pl_module):
        info = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "betas": self.betas,
            "names": self.names,
            "teachers": self.teachers,
            "sync_bn": sum(isinstance(m, nn.SyncBatchNorm) for m in pl_module.modules()),
            "bn": sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in pl_module.modules()),
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"probe_rank{trainer.global_rank}.json").write_text(json.dumps(info))
