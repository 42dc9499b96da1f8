"""Karaali patch data and LightningModules: balanced synthetic patches, fast_dev_run, frozen f1-NET, overfit."""

from __future__ import annotations

import functools

import lightning as L
import numpy as np
import pytest
import torch

from dbd_lightning.data.karaali_patches import KaraaliPatchDataModule, KaraaliPatchDataset, blur_pattern
from dbd_lightning.models.karaali import BNet, ENet
from dbd_lightning.ops.psf import blur, disk_kernel
from dbd_lightning.tasks.karaali import KaraaliPatchTask
from dbd_lightning.train import run

from .helpers import compose_cfg

TINY_PATCHES = ["logger=none", "data.num_workers=0", "data.batch_size=8", "data.eval_batch_size=8",
                "data.datamodule.patches_per_image=2", "data.datamodule.size=48", "data.datamodule.train_images=23",
                "data.datamodule.val_images=4", "data.datamodule.test_images=4", "++trainer.fast_dev_run=true"]


def test_bnet_patches_are_balanced_and_enet_has_both_classes():
    d = KaraaliPatchDataset("bnet", n_images=46, patches_per_image=3, size=48, seed=0)
    assert d.class_counts() == [6] * 23
    item = d[0]
    assert item["image"].shape == (3, 41, 41) and 0 <= float(item["image"].min()) <= float(item["image"].max()) <= 1
    e = KaraaliPatchDataset("enet", n_images=12, patches_per_image=3, size=64, seed=0)
    assert e.class_counts() == [18, 18]
    again = KaraaliPatchDataset("enet", n_images=12, patches_per_image=3, size=64, seed=0)
    assert torch.equal(e.patches, again.patches)  # seeded
    with pytest.raises(ValueError, match="task"):
        KaraaliPatchDataset("cnet")


def test_blur_patterns():
    rng = np.random.default_rng(0)
    sharp = np.random.default_rng(1).random((40, 50, 3)).astype(np.float32)
    uni = blur_pattern(np.random.default_rng(3), sharp, "uniform")
    level = 0.5 + 0.25 * np.random.default_rng(3).integers(23)
    np.testing.assert_allclose(uni, blur(sharp, disk_kernel(level)), atol=1e-6)
    for kind in ("gradual", "step"):
        out = blur_pattern(rng, sharp, kind)
        assert out.shape == sharp.shape and np.isfinite(out).all()
        assert 0 <= out.min() and out.max() <= 1 + 1e-5
    with pytest.raises(ValueError, match="pattern"):
        blur_pattern(rng, sharp, "zigzag")


@pytest.mark.parametrize("experiment", ["karaali_bnet", "karaali_enet"])
def test_experiment_fast_dev_run(tmp_path, experiment):
    cfg = compose_cfg(tmp_path, [f"experiment={experiment}", *TINY_PATCHES])
    metrics = run(cfg)
    assert {"test/patches/loss", "test/patches/acc"} <= set(metrics)
    if experiment == "karaali_bnet":
        assert "test/patches/radius_mae" in metrics and 0 <= metrics["test/patches/radius_mae"] <= 5.5


def test_enet_f1_loaded_from_bnet_and_frozen(tmp_path):
    torch.manual_seed(0)
    bnet = BNet()
    ckpt = tmp_path / "bnet.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in bnet.state_dict().items()}}, ckpt)
    task = KaraaliPatchTask(ENet(), optimizer=functools.partial(torch.optim.Adam, lr=1e-2), bnet_ckpt=str(ckpt))
    assert task.net.shares_f1_with(bnet)
    f1_before = {k: v.clone() for k, v in task.net.f1.state_dict().items()}
    f2_before = {k: v.clone() for k, v in task.net.f2.state_dict().items()}
    dm = KaraaliPatchDataModule("enet", train_images=4, val_images=2, test_images=2, patches_per_image=2, size=48,
                                batch_size=4)
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, accelerator="cpu")
    trainer.fit(task, datamodule=dm)
    assert all(torch.equal(f1_before[k], v) for k, v in task.net.f1.state_dict().items())
    assert any(not torch.equal(f2_before[k], v) for k, v in task.net.f2.state_dict().items())
    n_opt = sum(p.numel() for g in trainer.optimizers[0].param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in task.net.parameters()) - sum(p.numel() for p in task.net.f1.parameters())
    # Lightning checkpoints of the task load with weights_only=True (no optimizer factory in the hparams)
    from dbd_lightning.utils.checkpoint import load_state_dict

    trainer.save_checkpoint(tmp_path / "enet.ckpt")
    assert set(load_state_dict(tmp_path / "enet.ckpt")) == {f"net.{k}" for k in task.net.state_dict()}
    with pytest.raises(ValueError, match="only used by E-NET"):
        KaraaliPatchTask(BNet(), optimizer=torch.optim.Adam, bnet_ckpt=str(ckpt))


def test_bnet_tiny_overfit():
    torch.manual_seed(0)
    d = KaraaliPatchDataset("bnet", n_images=4, patches_per_image=4, size=48, seed=3)
    x, y = d.patches.float() / 255.0, d.labels
    net = BNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]
