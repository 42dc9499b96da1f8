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


#: ``model.net`` keys that only say where training starts (the network classes do not take them)
INIT_ONLY_NET_KEYS = ("init_ckpt",)


def takes_argument(target: str, key: str) -> bool:
    """Whether the class ``target`` names takes the argument ``key``."""
    return key in inspect.signature(hydra.utils.get_object(str(target))).parameters


def instantiate_network(node, **overrides):
    """The torch network a ``model.net`` node describes, without its init-only keys (``init_ckpt``: where
    training starts, applied by :func:`dbd_lightning.runs.task_builder.build_task`), unless the network class
    takes them itself (BTBNet). ``overrides`` replace keys (e.g. ``pretrained=False``). Use this rather than
    ``hydra.utils.instantiate(cfg.model.net)``."""
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    container.update(overrides)
    for key in INIT_ONLY_NET_KEYS:
        if not takes_argument(container["_target_"], key):
            container.pop(key, None)
    return hydra.utils.instantiate(container)


def build_datamodule(cfg: DictConfig):
    return hydra.utils.instantiate(cfg.data.datamodule)
