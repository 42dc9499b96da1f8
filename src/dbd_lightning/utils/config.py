"""Locating the Hydra config tree and building objects from a composed config."""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf


def config_dir() -> str:
    """Absolute path of the ``conf/`` tree (``DBD_CONF_DIR`` overrides)."""
    env = os.environ.get("DBD_CONF_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "conf"
    if not (path / "train.yaml").is_file():
        raise FileNotFoundError(
            f"Hydra config tree not found at {path}. Install the project in editable mode "
            "(`make setup`) or set DBD_CONF_DIR to the repository's conf/ folder."
        )
    return str(path)


def instantiate_dict(cfg: DictConfig | None) -> list:
    """Instantiate every entry with a ``_target_`` of a dict-of-configs group (callbacks, loggers)."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for _, c in cfg.items() if isinstance(c, DictConfig) and "_target_" in c]


def build_task(cfg: DictConfig):
    """The LightningModule: ``cfg.model`` with the loss and metric convention injected."""
    loss = hydra.utils.instantiate(cfg.loss)
    metrics = OmegaConf.to_container(cfg.metrics, resolve=True) if cfg.get("metrics") else {}
    return hydra.utils.instantiate(cfg.model, loss=loss, metrics=metrics)


def build_datamodule(cfg: DictConfig):
    return hydra.utils.instantiate(cfg.data.datamodule)
