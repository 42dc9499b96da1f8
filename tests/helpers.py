"""Shared helpers for the config / entry-point tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from dbd_lightning.utils.config import config_dir

REPO = Path(__file__).resolve().parents[1]

# shrink any config to a CPU smoke size
TINY = [
    "data.image_size=[64,64]",
    "data.render_size=[64,64]",
    "data.batch_size=2",
    "data.eval_batch_size=2",
    "data.num_workers=0",
    "data.train_length=4",
    "data.val_length=2",
    "data.test_length=2",
]


def compose_cfg(tmp_path: Path, overrides: list[str], config_name: str = "train") -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root_dir = str(REPO)
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
        del cfg["hydra"]
    return cfg


def run_module(module: str, args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="offline", HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1",
               WANDB_SILENT="true", DBD_LOG_DIR=str(cwd / "outputs"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
