"""One training run: fit + test + report for one composed config.

Used by :mod:`dbd_lightning.train` (one run per Hydra job) and by the staged pipelines
(:mod:`dbd_lightning.pipelines.stages`, one run per stage). It imports neither of them, so the
import graph has no cycle: ``train -> pipelines.stages -> runner`` and ``train -> runner``.

The run's output folder (``paths.output_dir``) receives the resolved config, checkpoints
(``checkpoints/epoch_NNN.ckpt`` = best, ``last.ckpt``; found again by
:mod:`dbd_lightning.runs.resolver`), logger files, ``metrics.json`` and ``results.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from .callbacks.run_meta import RunMetaCheckpoint
from .metrics.describe import describe_convention
from .ops.cpu_memory import reuse_freed_memory
from .runs.resolver import find_checkpoint
from .runs.resume import config_changes, keep_csv_history, resolve_ckpt_path
from .runs.run_meta import run_metadata
from .runs.task_builder import build_task
from .utils.atomic import write_text
from .utils.checkpoint import load_weights
from .utils.compile import compile_net
from .utils.config import build_datamodule, instantiate_dict
from .utils.preflight import (
    check_free_space,
    check_writable,
    checkpoint_bytes,
    output_folders,
    required_free_bytes,
)
from .utils.report import results_table, scalar_metrics, write_metrics

__all__ = ["drop_disabled_callbacks", "finish_wandb_runs", "run_training"]

log = logging.getLogger(__name__)


def run_training(cfg: DictConfig) -> dict[str, float]:
    """Fit + test as the config says (a config without ``pipeline``); returns the final scalar metrics."""
    output_dir = Path(cfg.paths.output_dir)
    is_zero = rank_zero_only.rank == 0
    for folder, key in output_folders(cfg):
        check_writable(folder, role=f"output folder {key}")
    resume = resolve_ckpt_path(cfg, output_dir) if cfg.train else None
    continuing = bool(cfg.get("run_dir")) and resume is not None
    if is_zero and not continuing:  # a new run's folder: nothing in it to keep as it was
        (output_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    pre = cfg.get("preflight") or {}
    if cfg.train and pre.get("min_free_mb", None) != 0:
        check_free_space(output_dir, required_free_bytes(cfg, checkpoint_bytes(task)))
    if continuing and is_zero:  # only after every check: a resume that stops leaves its run folder as it was
        log.info("continuing run %s from %s", cfg.run_dir, resume)
        changed = config_changes(Path(cfg.run_dir).expanduser(), cfg)
        if changed:
            log.warning("resumed with a config that differs from the original run in: %s", ", ".join(changed[:20]))
        moved = keep_csv_history(output_dir)
        if moved:
            log.info("kept the CSV history of the interrupted run as %s", moved)
    if compile_net(task, cfg.get("compile")):
        log.info("compiled task.net in place (torch.compile %s)", OmegaConf.to_container(cfg.compile))
    callbacks = drop_disabled_callbacks(instantiate_dict(cfg.get("callbacks")), cfg.trainer)
    callbacks.append(RunMetaCheckpoint(run_metadata(cfg)))  # model config + input size in every checkpoint
    loggers = instantiate_dict(cfg.get("logger"))
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        return _fit_test_report(cfg, trainer, task, datamodule, resume, output_dir)
    finally:  # also after a crash: the next job / stage in this process must start its own W&B run
        finish_wandb_runs(loggers)


def drop_disabled_callbacks(callbacks: list, trainer_cfg: DictConfig) -> list:
    """Leave out the callbacks the trainer flags switch off (Lightning refuses both together):
    ``trainer.enable_progress_bar=false`` drops the progress bar, ``enable_model_summary=false`` the
    summary, ``enable_checkpointing=false`` the ModelCheckpoint."""
    from lightning.pytorch.callbacks import Checkpoint, ModelSummary, ProgressBar

    off = [cls for flag, cls in (("enable_progress_bar", ProgressBar), ("enable_model_summary", ModelSummary),
                                 ("enable_checkpointing", Checkpoint)) if trainer_cfg.get(flag) is False]
    return [c for c in callbacks if not any(isinstance(c, cls) for cls in off)]


def finish_wandb_runs(loggers: list) -> None:
    """``wandb.finish()`` for every W&B logger whose run was started.

    Without it a second ``WandbLogger`` in the same process (the next job of a sequential
    or joblib multirun, the next stage of a pipeline) attaches to the first job's still-open run.
    """
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger) and getattr(lg, "_experiment", None) is not None:
            lg.experiment.finish()
            lg._experiment = None


def own_best(callback) -> str | None:
    """The best checkpoint ``callback`` recorded, looked up by file name in its own ``dirpath`` (as
    :func:`~dbd_lightning.runs.resolver.find_checkpoint` does): never a file of another run folder."""
    best = getattr(callback, "best_model_path", "") or ""
    if not best or not getattr(callback, "dirpath", None):
        return best or None
    path = Path(str(callback.dirpath)) / Path(best).name
    if not path.is_file():
        raise FileNotFoundError(f"the best checkpoint recorded by ModelCheckpoint ({best}) is not in its folder "
                                f"{callback.dirpath}")
    return str(path)


def _fit_test_report(cfg: DictConfig, trainer: L.Trainer, task: L.LightningModule, datamodule,
                     resume: str | None, output_dir: Path) -> dict[str, float]:
    if cfg.train:
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume)
    metrics = scalar_metrics(trainer.callback_metrics)

    if cfg.test:
        ckpt = None
        # test_ckpt=best: the best ModelCheckpoint recorded in this process, the same file that
        # runs.resolver.find_checkpoint(run, "best") reads back from last.ckpt afterwards
        if cfg.train and cfg.test_ckpt == "best" and trainer.checkpoint_callback is not None:
            ckpt = own_best(trainer.checkpoint_callback)
        elif cfg.test_ckpt == "last":  # the final weights (no epoch choice): this run's last.ckpt
            ckpt = str(find_checkpoint(output_dir, "last"))
        elif cfg.test_ckpt not in (None, "best", "current"):
            ckpt = cfg.test_ckpt
        if ckpt and not trainer.fast_dev_run:
            log.info("testing weights of %s", ckpt)
            load_weights(task, ckpt)
        with reuse_freed_memory():  # metrics at each image's original size: no fresh pages per image
            trainer.test(task, datamodule=datamodule)
        metrics.update(scalar_metrics(trainer.callback_metrics))

    if not trainer.is_global_zero:
        return metrics
    write_metrics(output_dir / "metrics.json", metrics)
    convention = describe_convention(**OmegaConf.to_container(cfg.metrics, resolve=True))
    table = results_table(metrics, "test" if cfg.test else "val", convention)
    write_text(output_dir / "results.md", table + "\n")
    print("\n" + table + f"\n\noutputs: {output_dir}\n", flush=True)
    if (cfg.get("real_report") or {}).get("enabled"):
        from .reports.real_samples_cli import report_after_training

        print(report_after_training(cfg, task.net, output_dir) + "\n", flush=True)
    return metrics
