"""Locating the Hydra config tree and building objects from a composed config."""

from __future__ import annotations

import inspect
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


def model_class(cfg: DictConfig) -> type | None:
    """The class ``cfg.model._target_`` names (imported), ``None`` when there is none or it is not a class."""
    target = OmegaConf.select(cfg, "model._target_", default=None)
    if not target:
        return None
    obj = hydra.utils.get_object(str(target))
    return obj if isinstance(obj, type) else None


def trainable_on(cfg: DictConfig) -> str | None:
    """What the model config trains on (``Task.trains_on``: ``images`` or ``edge_patches``);
    ``None`` when ``cfg.model`` names a class that is not a LightningModule (e.g. ``model=karaali``,
    a pipeline). A missing or unimportable ``_target_`` counts as ``images`` (building it reports that)."""
    import lightning as L

    try:
        cls = model_class(cfg)
    except Exception:  # an unimportable target: hydra.utils.instantiate names it when the task is built
        return "images"
    if cls is None:
        return "images" if OmegaConf.select(cfg, "model._target_", default=None) is None else None
    if not issubclass(cls, L.LightningModule):
        return None
    return getattr(cls, "trains_on", "images")


def build_task(cfg: DictConfig):
    """The LightningModule of ``cfg.model``, given what of the ``loss`` and ``metrics`` groups its
    ``__init__`` accepts (a task with its own loss, e.g. ``DepthTask``, gets neither)."""
    accepted = inspect.signature(model_class(cfg)).parameters
    extra = {}
    if "loss" in accepted and cfg.get("loss") is not None:
        extra["loss"] = hydra.utils.instantiate(cfg.loss)
    if "metrics" in accepted:
        extra["metrics"] = OmegaConf.to_container(cfg.metrics, resolve=True) if cfg.get("metrics") else {}
    return hydra.utils.instantiate(cfg.model, **extra)


def build_datamodule(cfg: DictConfig):
    return hydra.utils.instantiate(cfg.data.datamodule)
