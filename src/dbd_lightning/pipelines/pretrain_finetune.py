"""Pretrain-then-fine-tune in one command (BTBNet Sec. 4.1: simulated set -> CUHK).

A config whose ``pipeline.kind`` is ``pretrain_finetune`` (``experiment=btbnet_two_phase``)
runs two trainings of the same model:

1. **pretrain**: ``conf/train.yaml`` composed with ``experiment=<pipeline.pretrain_experiment>``,
   the same ``model`` group choice, the command-line overrides that are not fine-tuning
   specific (no ``experiment`` / ``pipeline`` / ``data`` choice; of ``data.*`` only the
   generic size keys in :data:`SHARED_DATA_KEYS`), then ``pipeline.pretrain_overrides``;
   output in ``<output_dir>/pretrain``.
2. **finetune**: this config without ``pipeline``, with ``model.net.init_ckpt`` = the
   pretraining run's best checkpoint (else ``last.ckpt``); output in ``<output_dir>/finetune``.

Returned metrics: the fine-tuning run's, plus the pretraining run's under ``pretrain/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from ..utils.errors import ConfigError
from .two_stage import _hydra_state, _key, _save_stage_config, compose_train, find_checkpoint

log = logging.getLogger(__name__)

#: ``data.*`` command-line keys that also apply to the pretraining data (sizes, loader settings).
SHARED_DATA_KEYS = ("image_size", "render_size", "batch_size", "eval_batch_size", "num_workers", "cache",
                    "train_length", "val_length", "test_length")
_FINETUNE_ONLY = ("experiment", "pipeline", "hydra", "data", "model.net.init_ckpt")


def pretrain_overrides(task_overrides: list[str]) -> list[str]:
    """The overrides of a fine-tuning command line that also apply to pretraining (``model=`` excluded)."""
    keep = []
    for o in task_overrides:
        key = _key(o)
        if key.startswith("data.") and key.split(".", 2)[1] in SHARED_DATA_KEYS and key.count(".") == 1:
            keep.append(o)
            continue
        if key == "model" or any(key == k or key.startswith(k + ".") for k in _FINETUNE_ONLY):
            continue
        keep.append(o)
    return keep


def run_pretrain_finetune(cfg: DictConfig, run: Callable[[DictConfig], dict]) -> dict[str, float]:
    """Pretrain, then fine-tune from the pretraining checkpoint (see the module docstring)."""
    from ..utils.report import write_metrics

    pipe = cfg.pipeline
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    task_overrides, model_choice, _ = _hydra_state()  # pretraining has its own data (no data choice copied)
    model_choice = pipe.get("pretrain_model") or model_choice
    if not model_choice:
        raise ConfigError("pretrain_finetune pipeline: set pipeline.pretrain_model (no Hydra model choice to copy)")

    p1 = [f"experiment={pipe.pretrain_experiment}", f"model={model_choice}", *pretrain_overrides(task_overrides),
          *list(pipe.get("pretrain_overrides") or [])]
    log.info("pretraining overrides: %s", p1)
    cfg1 = compose_train(p1)
    with open_dict(cfg1):
        for key in ("root_dir", "data_dir", "log_dir"):
            cfg1.paths[key] = cfg.paths[key]
        cfg1.paths.output_dir = str(out / "pretrain")
        cfg1.pop("hydra", None)
    _save_stage_config(cfg1, out / "pretrain")
    metrics1 = run(cfg1)
    ckpt = find_checkpoint(out / "pretrain")
    if ckpt is None:
        log.warning("pretraining saved no checkpoint (fast_dev_run?): fine-tuning starts from the default init")

    cfg2 = cfg.copy()
    with open_dict(cfg2):
        del cfg2["pipeline"]
        cfg2.model.net.init_ckpt = str(ckpt) if ckpt else None
        cfg2.paths.output_dir = str(out / "finetune")
    _save_stage_config(cfg2, out / "finetune")
    metrics2 = run(cfg2)
    metrics = {**{f"pretrain/{k}": v for k, v in metrics1.items()}, **metrics2}
    write_metrics(out / "metrics.json", metrics)
    (out / "pretrain_checkpoint.txt").write_text(f"{ckpt or ''}\n")
    return metrics
