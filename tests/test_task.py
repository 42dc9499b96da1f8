import collections

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
    image = torch.zeros(2, 3, 10, 12)
    grid = prediction_grid(image, torch.ones(2, 1, 10, 12), torch.full((2, 1, 10, 12), 0.25))
    # 3 columns (image | GT | prediction) x 2 rows, padding 2
    assert grid.shape == (3, 2 * 10 + 3 * 2, 3 * 12 + 4 * 2)
    assert grid.min() >= 0 and grid.max() <= 1


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


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp"])
def test_trainer_configs_compose(tmp_path, trainer):
    cfg = compose_cfg(tmp_path, [f"trainer={trainer}"])
    if trainer == "cpu":  # builds a real Trainer: one CPU process, float32, the paper's 75 epochs, atomic writes
        import hydra
        from lightning.pytorch.accelerators import CPUAccelerator

        from dbd_lightning.utils.checkpoint_io import AtomicCheckpointIO

        built = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert isinstance(built.accelerator, CPUAccelerator) and built.num_devices == 1
        assert built.precision == "32-true" and built.max_epochs == 75
        assert isinstance(built.strategy.checkpoint_io, AtomicCheckpointIO)
    if trainer == "ddp":
        assert cfg.trainer.strategy == "ddp"


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
