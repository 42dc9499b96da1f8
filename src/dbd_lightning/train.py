"""Train (and test) a model: ``python -m dbd_lightning.train model=dffnet data=synthetic``.

Everything comes from the Hydra config tree (``conf/train.yaml``); multirun
sweeps work as usual (``-m loss=bce,bce_edge``). Each run's output folder holds
the resolved config, checkpoints (best + last), logger files and metrics.json.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hydra  # noqa: E402
import lightning as L  # noqa: E402
from lightning.pytorch.callbacks import LearningRateMonitor  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from .metrics.describe import describe_convention  # noqa: E402
from .utils.checkpoint import load_weights  # noqa: E402
from .utils.config import build_datamodule, build_task, config_dir, instantiate_dict  # noqa: E402
from .utils.report import results_table, scalar_metrics, write_metrics  # noqa: E402

log = logging.getLogger(__name__)


def _resolve_resume(cfg: DictConfig, output_dir: Path) -> str | None:
    if cfg.ckpt_path in (None, ""):
        return None
    if cfg.ckpt_path == "last":
        path = output_dir / "checkpoints" / "last.ckpt"
        return str(path) if path.is_file() else None
    if not Path(cfg.ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist")
    return str(cfg.ckpt_path)


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit + test as the config says; returns the final scalar metrics.

    A config with a ``pipeline`` node (``experiment=ddffnet_two_stage``) runs
    D-DFFNet's two stages instead (:mod:`dbd_lightning.pipelines.two_stage`).
    """
    if cfg.get("pipeline"):
        from .pipelines.two_stage import run_two_stage

        return run_two_stage(cfg, run)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    callbacks = instantiate_dict(cfg.get("callbacks"))
    loggers = instantiate_dict(cfg.get("logger"))
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    if cfg.train:
        trainer.fit(task, datamodule=datamodule, ckpt_path=_resolve_resume(cfg, output_dir))
    metrics = scalar_metrics(trainer.callback_metrics)

    if cfg.test:
        ckpt = None
        if cfg.train and cfg.test_ckpt == "best" and trainer.checkpoint_callback is not None:
            ckpt = trainer.checkpoint_callback.best_model_path or None
        elif cfg.test_ckpt not in (None, "best", "current"):
            ckpt = cfg.test_ckpt
        if ckpt and not trainer.fast_dev_run:
            log.info("testing weights of %s", ckpt)
            load_weights(task, ckpt)
        trainer.test(task, datamodule=datamodule)
        metrics.update(scalar_metrics(trainer.callback_metrics))

    write_metrics(output_dir / "metrics.json", metrics)
    convention = describe_convention(**OmegaConf.to_container(cfg.metrics, resolve=True))
    table = results_table(metrics, "test" if cfg.test else "val", convention)
    (output_dir / "results.md").write_text(table + "\n")
    print("\n" + table + f"\n\noutputs: {output_dir}\n", flush=True)
    for lg in loggers:
        if hasattr(lg, "experiment") and type(lg).__name__ == "WandbLogger":
            import wandb

            wandb.finish()
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run(cfg)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return value


if __name__ == "__main__":
    main()
