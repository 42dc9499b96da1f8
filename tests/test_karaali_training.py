"""Karaali patch data and LightningModules: balanced synthetic patches, fast_dev_run, frozen f1-NET, overfit."""

from __future__ import annotations

import functools
import math

import lightning as L
import numpy as np
import pytest
import torch

from dbd_lightning.models.karaali import BNet, ENet
from dbd_lightning.models.karaali.levels import BNET_RADII
from dbd_lightning.models.karaali.patches import KaraaliPatchDataModule, KaraaliPatchDataset, blur_pattern
from dbd_lightning.models.karaali.task import KaraaliPatchTask
from dbd_lightning.ops.psf import blur, disk_kernel
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


def _blur_level_stack(sharp):
    """The 23 uniformly blurred images ``L_k = blur(sharp, disk(level_k))``, float64 ``(23, H, W, 3)``."""
    return np.stack([blur(sharp, disk_kernel(float(r))) for r in BNET_RADII]).astype(np.float64)


def _radius_map(out, stack):
    """Per-pixel blur radius of a pattern image: ``out = (1 - f) L_k + f L_k+1`` fitted over the 3 channels.

    Returns ``(radius, residual)``, ``radius = level_k + 0.25 f``; ``residual`` is the worst per-pixel misfit.
    """
    out = out.astype(np.float64)
    best = np.full(out.shape[:2], np.inf)
    radius = np.zeros(out.shape[:2])
    for k in range(len(stack) - 1):
        d, r = stack[k + 1] - stack[k], out - stack[k]
        f = np.clip((r * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-30), 0.0, 1.0)
        res = np.sqrt(((r - f[..., None] * d) ** 2).sum(-1))
        better = res < best
        best[better], radius[better] = res[better], BNET_RADII[k] + 0.25 * f[better]
    return radius, float(best.max())


def test_blur_patterns():
    """Uniform / gradual / step blur patterns do what ``blur_pattern`` documents (not just shape and range).

    Each pixel's blur radius is recovered from the output against the 23 uniformly blurred images (a random
    3-channel texture makes them distinguishable per pixel): uniform = one level everywhere; gradual = a linear
    ramp of the radius between two distinct levels across the image, increasing monotonically along its
    direction, with most pixels strictly between levels; step = the same ramp quantised to the 0.25 px levels,
    i.e. every pixel is exactly one uniformly blurred image and the level changes by one step exactly where the
    gradual ramp of the same generator state crosses the half level (gradual and step draw the ramp alike).
    """
    rng = np.random.default_rng(0)
    sharp = np.random.default_rng(1).random((40, 50, 3)).astype(np.float32)
    h, w = sharp.shape[:2]
    stack = _blur_level_stack(sharp)
    levels = np.asarray(BNET_RADII)

    uni = blur_pattern(np.random.default_rng(3), sharp, "uniform")
    level = 0.5 + 0.25 * np.random.default_rng(3).integers(23)
    np.testing.assert_allclose(uni, blur(sharp, disk_kernel(level)), atol=1e-6)
    radius, res = _radius_map(uni, stack)
    assert res < 1e-5 and np.ptp(radius) < 1e-4 and radius.mean() == pytest.approx(level, abs=1e-4)  # constant

    for kind in ("gradual", "step"):
        out = blur_pattern(rng, sharp, kind)
        assert out.shape == sharp.shape and np.isfinite(out).all()
        assert 0 <= out.min() and out.max() <= 1 + 1e-5

    n_steps = []
    for seed in range(6):
        grad = blur_pattern(np.random.default_rng(seed), sharp, "gradual")
        radius, res = _radius_map(grad, stack)
        assert res < 1e-5  # every pixel is a blend of two adjacent blur levels
        # linear ramp: constant finite differences along x and y, not both zero
        gx, gy = np.diff(radius, axis=1), np.diff(radius, axis=0)
        assert gx.std() < 1e-4 and gy.std() < 1e-4 and math.hypot(gx.mean(), gy.mean()) > 1e-3
        # ... increasing monotonically along its direction (gx.mean(), gy.mean()): same sign everywhere
        assert (np.sign(gx.mean()) * gx > -1e-5).all() and (np.sign(gy.mean()) * gy > -1e-5).all()
        # ... from one of the 23 levels to another, spanning exactly the image (extreme corners)
        lo, hi = radius.min(), radius.max()
        assert hi - lo >= 0.25 - 1e-4
        for r in (lo, hi):
            assert np.abs(levels - r).min() < 1e-4
        assert hi - lo == pytest.approx(abs(gx.mean()) * (w - 1) + abs(gy.mean()) * (h - 1), abs=1e-3)
        corners = radius[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert corners.min() == pytest.approx(lo, abs=1e-4) and corners.max() == pytest.approx(hi, abs=1e-4)
        # ... and continuous, not quantised: most pixels lie strictly between two levels
        off_grid = np.abs((radius - levels[0]) / 0.25 - np.round((radius - levels[0]) / 0.25)) > 0.04
        assert off_grid.mean() > 0.5

        step = blur_pattern(np.random.default_rng(seed), sharp, "step")
        err = np.abs(step[None].astype(np.float64) - stack).max(-1)  # (23, H, W)
        k = err.argmin(0)
        assert err.min(0).max() < 1e-6  # every pixel is exactly one uniformly blurred image
        # the levels form contiguous bands from the ramp's low to its high level ...
        present = np.unique(k)
        assert len(present) >= 2 and np.array_equal(present, np.arange(present[0], present[-1] + 1))
        assert levels[present[0]] == pytest.approx(lo, abs=1e-4) and levels[present[-1]] == pytest.approx(hi, abs=1e-4)
        # ... separated by steps of one level (0.25 px) placed where the gradual ramp crosses the half levels
        assert np.abs(np.diff(k, axis=1)).max() <= 1 and np.abs(np.diff(k, axis=0)).max() <= 1
        expected = np.floor((radius - levels[0]) / 0.25 + 0.5).astype(int)
        ambiguous = np.abs((radius - levels[0]) / 0.25 % 1.0 - 0.5) < 1e-3  # on a half level: either side
        assert np.array_equal(k[~ambiguous], expected[~ambiguous])
        assert not np.allclose(step, grad, atol=1e-3)  # and the two patterns are different images
        n_steps.append(len(present) - 1)
    assert min(n_steps) >= 1 and max(n_steps) >= 3  # single steps and multi-step staircases both occur

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


def test_bnet_checkpoint_with_config_radii_loads_safely(tmp_path):
    """Hydra passes ``radii`` as a ListConfig; the checkpoint (its hparams) must still load with
    ``weights_only=True`` -- the test phase of ``train`` reloads the best checkpoint that way."""
    from omegaconf import OmegaConf

    from dbd_lightning.utils.checkpoint import load_state_dict

    task = KaraaliPatchTask(BNet(), optimizer=torch.optim.Adam, radii=OmegaConf.create(list(BNET_RADII)))
    assert type(task.hparams["radii"]) is list and task.hparams["radii"] == list(BNET_RADII)
    trainer = L.Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(task)
    trainer.save_checkpoint(tmp_path / "bnet.ckpt")
    assert set(load_state_dict(tmp_path / "bnet.ckpt")) == {f"net.{k}" for k in task.net.state_dict()}


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


def test_karaali_recipes():
    """Sec. IV-A: 23 B-NET levels 0.5..6.0 px (one per classifier output), whole-image disk blur; E-NET composite."""
    from dbd_lightning.data.synthetic.textures import TextureBank
    from dbd_lightning.models.karaali import KARAALI_LEVELS
    from dbd_lightning.models.karaali.synthetic import (
        karaali_bnet_sample,
        karaali_enet_sample,
        uniform_disk_blur,
    )

    assert len(BNET_RADII) == KARAALI_LEVELS == 23
    assert BNET_RADII[0] == 0.5 and BNET_RADII[-1] == 6.0
    np.testing.assert_allclose(np.diff(BNET_RADII), 0.25)
    src = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    s0 = karaali_bnet_sample(np.random.default_rng(0), src, size=None, level=0)
    np.testing.assert_array_equal(s0["image"], src)  # radius 0.5 = identity disk
    s = karaali_bnet_sample(np.random.default_rng(0), src, size=None, level=22)
    assert s["radius"] == 6.0 and s["image"].std() < src.std()
    np.testing.assert_allclose(
        uniform_disk_blur(src.astype(np.float32) / 255, 2.0),
        blur(src.astype(np.float32) / 255, disk_kernel(2.0)),
    )
    e = karaali_enet_sample(np.random.default_rng(0), TextureBank(), size=48)
    assert e["image"].shape == (48, 48, 3) and e["r_fg"] < e["r_bg"] and e["mask"].any()
