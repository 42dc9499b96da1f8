"""Glue between a finished training run and :mod:`.real_samples` (``real_report.enabled=true``)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..inference.predictor import CheckpointPredictor
from ..inference.settings import InferenceSettings
from .real_samples import real_samples_report

log = logging.getLogger(__name__)


def report_after_training(cfg: DictConfig, net: nn.Module, output_dir: Path) -> str:
    """Score the trained ``net`` (the weights the test phase used) and the released model on the real samples."""
    tf = OmegaConf.select(cfg, "data.datamodule.eval_transform", default=None) or {}
    size = OmegaConf.select(cfg, "data.image_size", default=None) or tf.get("size") or (320, 320)
    settings = InferenceSettings.papers_protocol(OmegaConf.to_container(size) if OmegaConf.is_config(size) else size)
    predictors = {f"this run ({cfg.get('task_name', 'model')})": CheckpointPredictor(
        net.cpu(), settings, mean=list(tf.get("mean", IMAGENET_MEAN)), std=list(tf.get("std", IMAGENET_STD)),
        device="cpu")}
    name = (cfg.get("real_report") or {}).get("compare_zoo")
    if name:
        from ..zoo import resolve_zoo, zoo_names

        if name in zoo_names():
            predictors[f"released zoo:{name}"] = CheckpointPredictor.from_run(
                resolve_zoo(name), InferenceSettings.papers_protocol(), device="cpu")
        else:
            log.warning("real_report.compare_zoo=%s: no such released model (released: %s)", name, zoo_names())
    metrics_cfg = OmegaConf.to_container(cfg.metrics, resolve=True) if "metrics" in cfg else {}
    return real_samples_report(predictors, metrics_cfg, output_dir)
