"""Locating the Hydra config tree and building objects from a composed config."""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


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


def init_checkpoint_file(spec: str) -> Path:
    """The weight file a ``model.net.init_ckpt`` value names, through the one checkpoint resolver:
    ``zoo:<name>`` (a released model), a train run folder (its best checkpoint), a ``.ckpt`` file of a
    run, or any other checkpoint / state-dict file (``.ckpt``, ``.pth``, ``.safetensors``)."""
    from ..runs.resolver import resolve_checkpoint

    path = Path(str(spec)).expanduser()
    if path.is_file() and not str(spec).startswith("zoo:"):
        return path
    return Path(resolve_checkpoint(str(spec)).ckpt)


#: ``model.net`` keys that only say where training starts (the network classes do not take them)
INIT_ONLY_NET_KEYS = ("init_ckpt",)


def _takes(target: str, key: str) -> bool:
    """Whether the class ``target`` names takes the argument ``key``."""
    return key in inspect.signature(hydra.utils.get_object(str(target))).parameters


def instantiate_network(node, **overrides):
    """The torch network a ``model.net`` node describes, without its init-only keys (``init_ckpt``:
    where training starts, applied by :func:`build_task`), unless the network class takes them itself
    (BTBNet). ``overrides`` replace keys (e.g. ``pretrained=False``). Use this rather than
    ``hydra.utils.instantiate(cfg.model.net)``."""
    container = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    container.update(overrides)
    for key in INIT_ONLY_NET_KEYS:
        if not _takes(container["_target_"], key):
            container.pop(key, None)
    return hydra.utils.instantiate(container)


def build_task(cfg: DictConfig):
    """The LightningModule of ``cfg.model``, given what of the ``loss`` and ``metrics`` groups its
    ``__init__`` accepts (a task with its own loss, e.g. ``DepthTask``, gets neither).

    ``model.net.init_ckpt`` (a released model ``zoo:<name>``, a run folder or a checkpoint file) is the
    starting point of the network: resolved by :func:`init_checkpoint_file`, then given to a network
    that takes ``init_ckpt`` itself (BTBNet: partial phase-to-phase loading) or loaded into ``task.net``
    (every key, every shape, or an error naming the mismatches). A resumed run's checkpoint replaces it.
    """
    accepted = inspect.signature(model_class(cfg)).parameters
    extra = {}
    if "loss" in accepted and cfg.get("loss") is not None:
        extra["loss"] = hydra.utils.instantiate(cfg.loss)
    if "metrics" in accepted:
        extra["metrics"] = OmegaConf.to_container(cfg.metrics, resolve=True) if cfg.get("metrics") else {}
    net_node = OmegaConf.select(cfg, "model.net", default=None)
    if not isinstance(net_node, DictConfig) or "init_ckpt" not in net_node:
        return hydra.utils.instantiate(cfg.model, **extra)
    from .checkpoint import load_weights

    init = net_node.init_ckpt
    file = init_checkpoint_file(init) if init else None
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    if _takes(net_node._target_, "init_ckpt"):
        model_cfg["net"]["init_ckpt"] = str(file) if file else None
        return hydra.utils.instantiate(OmegaConf.create(model_cfg), **extra)
    del model_cfg["net"]["init_ckpt"]
    task = hydra.utils.instantiate(OmegaConf.create(model_cfg), **extra)
    if file is not None:
        load_weights(task.net, file, prefix="net.")
        log.info("model.net.init_ckpt: network initialised from %s", file)
    return task


def build_datamodule(cfg: DictConfig):
    return hydra.utils.instantiate(cfg.data.datamodule)
