import collections
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from dbd_lightning.tasks.detection import DetectionTask
from dbd_lightning.tasks.visualize import prediction_grid
from dbd_lightning.utils.checkpoint import load_state_dict, load_weights

from .helpers import compose_cfg


def test_predictions_are_resized_back_to_each_original_size():
    logits = torch.zeros(2, 1, 8, 8)
    logits[0, :, :, :4] = 10.0
    probs = DetectionTask.probabilities_at_original_size(logits, [(16, 32), (8, 8)])
    assert [tuple(p.shape) for p in probs] == [(1, 16, 32), (1, 8, 8)]
    assert probs[0][0, :, :14].min() > 0.99 and probs[0][0, :, 18:].max() == pytest.approx(0.5)
    assert all(float(p.min()) >= 0 and float(p.max()) <= 1 for p in probs)


def test_prediction_grid_layout():
    """One row per sample, columns image | GT | prediction, 2 px white padding: every cell is checked
    against its hand-made content (a swapped column or row fails)."""
    h, w = 10, 12
    image = torch.zeros(2, 3, h, w)
    image[1] = 1.0  # denormalised: mean + std (sample 0: the ImageNet mean)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    gt = torch.zeros(2, 1, h, w)
    gt[0, :, :, : w // 2] = 1.0  # sample 0: left half in focus; sample 1: top half
    gt[1, :, : h // 2] = 1.0
    pred = torch.stack([torch.full((1, h, w), 0.25), torch.full((1, h, w), 0.75)])
    grid = prediction_grid(image, gt, pred)
    # 3 columns (image | GT | prediction) x 2 rows, padding 2
    assert grid.shape == (3, 2 * h + 3 * 2, 3 * w + 4 * 2)
    expected = {(0, 0): mean.view(3, 1, 1).expand(3, h, w), (1, 0): (mean + std).view(3, 1, 1).expand(3, h, w),
                (0, 1): gt[0].expand(3, h, w), (1, 1): gt[1].expand(3, h, w),
                (0, 2): torch.full((3, h, w), 0.25), (1, 2): torch.full((3, h, w), 0.75)}
    covered = torch.zeros(grid.shape[1:], dtype=torch.bool)
    for (row, col), cell in expected.items():
        y, x = 2 + row * (h + 2), 2 + col * (w + 2)
        assert torch.allclose(grid[:, y : y + h, x : x + w], cell), (row, col)
        covered[y : y + h, x : x + w] = True
    assert (grid[:, ~covered] == 1.0).all()  # the padding is white


class Evil:
    def __reduce__(self):
        return (print, ("executed!",))


def test_checkpoint_loading_is_weights_only(tmp_path):
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": collections.OrderedDict(w=torch.ones(2)), "epoch": 3, "name": "x"}, good)
    assert torch.equal(load_state_dict(good)["w"], torch.ones(2))
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "payload": Evil()}, evil)
    with pytest.raises(RuntimeError, match="weights_only=True"):
        load_state_dict(evil)
    with pytest.raises(FileNotFoundError):
        load_state_dict(tmp_path / "missing.ckpt")


def test_load_weights_reports_mismatched_keys(tmp_path):
    module = torch.nn.Linear(2, 3)
    path = tmp_path / "w.ckpt"
    torch.save({"state_dict": {"weight": torch.zeros(4, 2), "extra": torch.zeros(1)}}, path)
    with pytest.raises(RuntimeError) as err:
        load_weights(module, path)
    msg = str(err.value)
    assert "missing keys (1): ['bias']" in msg and "unexpected keys (1): ['extra']" in msg
    assert "('weight', (4, 2), (3, 2))" in msg


#: what each trainer option sets (by hand, from the docs of conf/trainer/*.yaml); every option inherits
#: default.yaml's run (the paper's 75 epochs, float32, atomic checkpoint writes)
TRAINERS = {
    "default": {"accelerator": "cpu", "devices": 1},
    "cpu": {"accelerator": "cpu", "devices": 1},
    "gpu": {"accelerator": "gpu", "devices": 1},
    "ddp": {"accelerator": "gpu", "devices": "auto", "num_nodes": 1, "strategy": "ddp", "sync_batchnorm": True,
            "use_distributed_sampler": True},
    "ddp_cpu": {"accelerator": "cpu", "devices": 2, "num_nodes": 1, "strategy": "ddp", "sync_batchnorm": False,
                "use_distributed_sampler": True},
}


def test_every_trainer_option_is_checked():
    from dbd_lightning.utils.config import config_dir

    assert {p.stem for p in (Path(config_dir()) / "trainer").glob("*.yaml")} == set(TRAINERS)


@pytest.mark.parametrize("trainer", sorted(TRAINERS))
def test_trainer_configs_compose(tmp_path, trainer):
    cfg = compose_cfg(tmp_path, [f"trainer={trainer}"])
    t = cfg.trainer
    assert {k: t.get(k) for k in TRAINERS[trainer]} == TRAINERS[trainer]
    if "strategy" not in TRAINERS[trainer]:
        assert "strategy" not in t  # one process: Lightning's default
    assert t._target_ == "lightning.pytorch.Trainer" and t.max_epochs == 75 and t.precision == "32-true"
    assert [p._target_ for p in t.plugins] == ["dbd_lightning.utils.checkpoint_io.AtomicCheckpointIO"]
    if trainer == "cpu":  # builds a real Trainer: one CPU process, float32, the paper's 75 epochs, atomic writes
        import hydra
        from lightning.pytorch.accelerators import CPUAccelerator

        from dbd_lightning.utils.checkpoint_io import AtomicCheckpointIO

        built = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert isinstance(built.accelerator, CPUAccelerator) and built.num_devices == 1
        assert built.precision == "32-true" and built.max_epochs == 75
        assert isinstance(built.strategy.checkpoint_io, AtomicCheckpointIO)


def test_callbacks_are_a_dict_that_can_be_edited_from_the_command_line(tmp_path):
    cfg = compose_cfg(tmp_path, ["~callbacks.lr_monitor", "callbacks.model_checkpoint.save_top_k=3"])
    assert "lr_monitor" not in cfg.callbacks and cfg.callbacks.model_checkpoint.save_top_k == 3
    assert cfg.callbacks.model_checkpoint.monitor == "val/synthetic/mae"


class GridRecorder(CSVLogger):
    """Test helper: a logger with W&B's ``log_image`` signature that records what it is given."""

    calls: list = []

    def log_image(self, key, images, caption=None, step=None):
        GridRecorder.calls.append({"key": key, "images": images, "caption": caption, "step": step})


def test_validation_prediction_grids_reach_image_loggers(tmp_path):
    from dbd_lightning.train import run

    from .helpers import TINY

    GridRecorder.calls = []
    cfg = compose_cfg(tmp_path, ["model=dffnet_small", "logger=none", *TINY, "trainer.max_epochs=2",
                                 "trainer.num_sanity_val_steps=1", "+logger.grids._target_=tests.test_task.GridRecorder",
                                 f"+logger.grids.save_dir={tmp_path}", "~callbacks.lr_monitor"])
    run(cfg)
    calls = GridRecorder.calls
    # one grid per validation epoch (none for the sanity check), at that epoch's global step
    assert [c["key"] for c in calls] == ["val/synthetic/predictions"] * 2
    assert [c["step"] for c in calls] == [2, 4]  # 4 training samples, batch 2 -> 2 steps per epoch
    n = cfg.model.log_images
    (grid,) = calls[-1]["images"]
    # (H, W, 3) uint8 in 0..255 (a [0, 1] float grid is black in wandb); rows = samples, 3 panels
    assert grid.shape == (min(n, 2) * 64 + (min(n, 2) + 1) * 2, 3 * 64 + 4 * 2, 3) and grid.dtype == np.uint8
    assert calls[-1]["caption"] == ["image | GT | prediction"]
