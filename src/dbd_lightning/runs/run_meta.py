"""Checkpoints carry their run's model config and input size; eval / predict / export compare them.

``train`` adds :class:`~dbd_lightning.callbacks.run_meta.RunMetaCheckpoint` to every run: each checkpoint it writes holds
``checkpoint["dbd_run"] = {"model": <the model node, uninterpolated>, "image_size": [h, w],
"run_dir": <run folder>}`` (plain containers: loadable with ``weights_only=True``). ``run_dir`` is
where the checkpoint was written, named in messages only: nothing opens it, since run folders may be
moved or copied (a copy's checkpoints keep naming the original).
:func:`check_checkpoint_matches_run` (called by ``CheckpointPredictor.from_run``, so by
eval, predict and export) refuses a checkpoint whose architecture keys (``model._target_``,
``model.net.*`` except init-only keys) or input size differ from the run config the network
is rebuilt from: ``eval run_dir=A ckpt=<run B's checkpoint>`` used to evaluate B's weights
with A's config silently. Checkpoints written before this existed carry no ``dbd_run``
and are loaded as before. This module imports no Lightning (eval / predict / export read
checkpoints without it); the callback lives in :mod:`dbd_lightning.callbacks.run_meta`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..utils.errors import CheckpointError

log = logging.getLogger(__name__)

CKPT_KEY = "dbd_run"
#: model.net keys that only choose the initialisation (not the architecture)
INIT_ONLY = ("model.net.pretrained", "model.net.weights_file", "model.net.init_ckpt")


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else node


def _image_size(cfg: DictConfig) -> list[int] | None:
    size = OmegaConf.select(cfg, "data.image_size", default=None, throw_on_resolution_failure=False)
    if size is None:
        return None
    values = list(size) if not isinstance(size, int) else [size, size]
    return [int(v) for v in values] if len(values) != 1 else [int(values[0])] * 2


def run_metadata(cfg: DictConfig) -> dict[str, Any]:
    """What a checkpoint of this run records about it (module docstring)."""
    return {"model": _container(cfg.get("model")), "image_size": _image_size(cfg),
            "run_dir": str(OmegaConf.select(cfg, "paths.output_dir", default="", throw_on_resolution_failure=False))}


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    return {prefix: node}


def architecture_differences(stored: dict[str, Any], cfg: DictConfig) -> list[str]:
    """``key: checkpoint=... run=...`` for each architecture key / the input size that differ."""
    from .renames import migrate_config  # a checkpoint written before modules moved names the old paths

    old = _flatten(migrate_config({"model": stored.get("model") or {}})["model"], "model")
    new = _flatten(_container(cfg.get("model")) or {}, "model")
    keys = sorted(k for k in set(old) | set(new)
                  if (k == "model._target_" or k.startswith("model.net.")) and not k.startswith(INIT_ONLY)
                  and old.get(k, "<unset>") != new.get(k, "<unset>"))
    out = [f"{k}: checkpoint={old.get(k, '<unset>')!r}, run config={new.get(k, '<unset>')!r}" for k in keys]
    size = _image_size(cfg)
    if stored.get("image_size") and size and list(stored["image_size"]) != size:
        out.append(f"data.image_size: checkpoint={list(stored['image_size'])}, run config={size}")
    return out


def check_checkpoint_matches_run(ckpt: str | Path, cfg: DictConfig, config_file: str | Path) -> None:
    """Raise :class:`CheckpointError` naming the keys when ``ckpt`` was trained with another model config
    or input size than ``cfg`` (the run config the network is rebuilt from)."""
    from ..utils.checkpoint import read_checkpoint

    state = read_checkpoint(ckpt, mmap=True)
    stored = state.get(CKPT_KEY) if isinstance(state, dict) else None
    if not isinstance(stored, dict):
        log.info("%s records no run config (written before checkpoints carried it): not compared", ckpt)
        return
    diff = architecture_differences(stored, cfg)
    if diff:
        origin = f" (it was written by the run {stored['run_dir']})" if stored.get("run_dir") else ""
        shown = "; ".join(diff[:6]) + (f" (+{len(diff) - 6} more)" if len(diff) > 6 else "")
        raise CheckpointError(
            f"checkpoint {ckpt}{origin} does not belong to the run config {config_file}: {shown}. Pass the "
            "checkpoint's own run folder (ckpt=<its run folder> or run_dir=<its run folder>) so the network "
            "is rebuilt from the config it was trained with.")
