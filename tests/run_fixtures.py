"""Fake "train runs" for the predict / eval / export tests: a saved config + a checkpoint, no training.

A run folder looks exactly like one written by ``dbd_lightning.train``
(``.hydra/config.yaml`` + ``checkpoints/epoch_000.ckpt`` holding the
LightningModule's ``state_dict``), with randomly initialised tiny weights
(seeded, so two runs differ).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image

from dbd_lightning.runs.task_builder import build_task

from .helpers import REPO, TINY, compose_cfg

FIXTURES = REPO / "tests" / "fixtures" / "real_mini"
CUHK_SAMPLE = FIXTURES / "cuhk_te_sample"   # GT white = in focus (redistributed copy)
DUT_SAMPLE = FIXTURES / "dut_te_sample"     # GT white = in focus


def make_run(root: Path, seed: int = 0, overrides: tuple[str, ...] = ()) -> Path:
    """A run folder of a tiny DFFNet (resnet18, 64x64 input) with seeded random weights."""
    run = root / f"run{seed}"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    cfg = compose_cfg(run, ["model=dffnet_small", "logger=none", *TINY, *overrides])
    torch.manual_seed(seed)
    task = build_task(cfg)
    (run / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    torch.save({"state_dict": task.state_dict(), "epoch": 0}, run / "checkpoints" / "epoch_000.ckpt")
    return run


def write_image(path: Path, h: int, w: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path
