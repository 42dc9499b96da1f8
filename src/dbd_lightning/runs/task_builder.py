"""The LightningModule of a train config (:func:`build_task`), its network started from the checkpoint
``model.net.init_ckpt`` names: a released model, another run or a weight file, found through the one
checkpoint resolver (:mod:`.resolver`). Here, beside the resolver, rather than with the config tools of
:mod:`dbd_lightning.utils.config`, which know no runs.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from ..utils.checkpoint import load_weights
from ..utils.config import model_class, takes_argument
from .resolver import resolve_checkpoint

log = logging.getLogger(__name__)


def init_checkpoint_file(spec: str) -> Path:
    """The weight file a ``model.net.init_ckpt`` value names, through the one checkpoint resolver:
    ``zoo:<name>`` (a released model), a train run folder (its best checkpoint), a ``.ckpt`` file of a
    run, or any other checkpoint / state-dict file (``.ckpt``, ``.pth``, ``.safetensors``)."""
    path = Path(str(spec)).expanduser()
    if path.is_file() and not str(spec).startswith("zoo:"):
        return path
    return Path(resolve_checkpoint(str(spec)).ckpt)


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
    init = net_node.init_ckpt
    file = init_checkpoint_file(init) if init else None
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    if takes_argument(net_node._target_, "init_ckpt"):
        model_cfg["net"]["init_ckpt"] = str(file) if file else None
        return hydra.utils.instantiate(OmegaConf.create(model_cfg), **extra)
    del model_cfg["net"]["init_ckpt"]
    task = hydra.utils.instantiate(OmegaConf.create(model_cfg), **extra)
    if file is not None:
        load_weights(task.net, file, prefix="net.")
        log.info("model.net.init_ckpt: network initialised from %s", file)
    return task
