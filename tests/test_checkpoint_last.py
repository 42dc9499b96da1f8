"""``last.ckpt`` holds the end of the latest epoch even when that epoch was not among the best."""

from __future__ import annotations

import torch

from dbd_lightning.runs.resolver import find_checkpoint, recorded_best
from dbd_lightning.train import run

from .helpers import compose_cfg

BASE = ["model=dffnet_small", "data=synthetic", "data.image_size=[32,32]", "data.render_size=[32,32]",
        "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0", "data.train_length=4",
        "data.val_length=2", "data.test_length=2", "logger=none", "test=false"]


def _epoch(path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


def test_last_ckpt_is_the_final_epoch_when_the_best_is_the_first(tmp_path):
    # monitor the epoch index itself, mode=min: epoch 0 is the best forever, later epochs never enter the top-k
    run(compose_cfg(tmp_path, [*BASE, "trainer.max_epochs=3", "callbacks.model_checkpoint.monitor=epoch"]))
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("*.ckpt")) == ["epoch_000.ckpt", "last.ckpt"]
    assert _epoch(ckpts / "epoch_000.ckpt") == 0
    assert _epoch(ckpts / "last.ckpt") == 2  # Lightning 2.6.6 alone leaves epoch 0 here
    assert recorded_best(ckpts / "last.ckpt") == "epoch_000.ckpt"
    assert find_checkpoint(tmp_path, "best").name == "epoch_000.ckpt"
    state = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 3 * 2  # 4 scenes / batch 2 = 2 steps per epoch


def test_fast_dev_run_still_writes_no_checkpoint(tmp_path):
    run(compose_cfg(tmp_path, [*BASE, "++trainer.fast_dev_run=true"]))
    assert list(tmp_path.rglob("*.ckpt")) == []
