"""Train (and test) a model: ``python -m dbd_lightning.train model=dffnet data=synthetic``.

Everything comes from the Hydra config tree (``conf/train.yaml``); multirun
sweeps work as usual (``-m loss=bce,bce_edge``). Each run's output folder holds
the resolved config, checkpoints (best + last), logger files and metrics.json.

``model=<paper>`` is the paper's model with its recipe (:mod:`dbd_lightning.utils.presets`:
``model=ddffnet`` runs both D-DFFNet stages). Continue a killed run in its own folder with
``run_dir=<run folder> ckpt_path=last`` (:mod:`dbd_lightning.utils.resume`). The composed
config is checked before Hydra creates the run folder (:mod:`dbd_lightning.utils.validate`:
values, data on disk, checkpoint, memory); user errors print ``error: ...`` and exit 2. Before training, every output folder is
checked for writability and free space (:mod:`dbd_lightning.utils.preflight`).
Under DDP only global rank 0 writes the run's files.
"""

from __future__ import annotations

from . import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import logging
import os
import sys
import warnings
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from .metrics.describe import describe_convention
from .ops.cpu_memory import reuse_freed_memory
from .utils.checkpoint import load_weights
from .utils.compile import compile_net
from .utils.config import build_datamodule, build_task, config_dir, instantiate_dict
from .utils.errors import handle_user_errors
from .utils.preflight import check_free_space, check_writable, output_folders, required_free_bytes
from .utils.presets import expand_model_presets
from .utils.report import results_table, scalar_metrics, write_metrics
from .utils.resume import argv_for_resume, config_changes, keep_csv_history, resolve_ckpt_path
from .utils.run_meta import RunMetaCheckpoint, run_metadata
from .utils.validate import precheck_train

log = logging.getLogger(__name__)
# conf/hydra/launcher/{joblib,submitit_slurm}.yaml replace the plugins' configs of the same name on purpose
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")
_ARGV = list(sys.argv)  # the command line as typed (DDP relaunches ranks with it, see main)


def _resolve_resume(cfg: DictConfig, output_dir: Path) -> str | None:
    return resolve_ckpt_path(cfg, output_dir)


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit + test as the config says; returns the final scalar metrics.

    A config with a ``pipeline`` node (``experiment=ddffnet_two_stage``) runs
    D-DFFNet's two stages instead (:mod:`dbd_lightning.pipelines.two_stage`).
    """
    if cfg.get("pipeline"):
        from .pipelines.two_stage import run_two_stage

        return run_two_stage(cfg, run)
    output_dir = Path(cfg.paths.output_dir)
    is_zero = rank_zero_only.rank == 0
    for folder, key in output_folders(cfg):
        check_writable(folder, role=f"output folder {key}")
    resume = _resolve_resume(cfg, output_dir) if cfg.train else None
    continuing = bool(cfg.get("run_dir")) and resume is not None
    if continuing and is_zero:
        log.info("continuing run %s from %s", cfg.run_dir, resume)
        changed = config_changes(Path(cfg.run_dir).expanduser(), cfg)
        if changed:
            log.warning("resumed with a config that differs from the original run in: %s", ", ".join(changed[:20]))
        moved = keep_csv_history(output_dir)
        if moved:
            log.info("kept the CSV history of the interrupted run as %s", moved)
    if is_zero and not continuing:
        (output_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    task = build_task(cfg)
    pre = cfg.get("preflight") or {}
    if cfg.train and pre.get("min_free_mb", None) != 0:
        check_free_space(output_dir, required_free_bytes(cfg, task))
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
    or joblib multirun, stage 2 of a pipeline) attaches to the first job's still-open run.
    """
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger) and getattr(lg, "_experiment", None) is not None:
            lg.experiment.finish()
            lg._experiment = None


def _fit_test_report(cfg: DictConfig, trainer: L.Trainer, task: L.LightningModule, datamodule,
                     resume: str | None, output_dir: Path) -> dict[str, float]:
    if cfg.train:
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume)
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
        with reuse_freed_memory():  # metrics at each image's original size: no fresh pages per image
            trainer.test(task, datamodule=datamodule)
        metrics.update(scalar_metrics(trainer.callback_metrics))

    if not trainer.is_global_zero:
        return metrics
    write_metrics(output_dir / "metrics.json", metrics)
    convention = describe_convention(**OmegaConf.to_container(cfg.metrics, resolve=True))
    table = results_table(metrics, "test" if cfg.test else "val", convention)
    (output_dir / "results.md").write_text(table + "\n")
    print("\n" + table + f"\n\noutputs: {output_dir}\n", flush=True)
    if (cfg.get("real_report") or {}).get("enabled"):
        from .reports.real_samples_cli import report_after_training

        print(report_after_training(cfg, task.net, output_dir) + "\n", flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    sys.argv = list(_ARGV)  # Lightning's DDP launcher re-runs this command line for the other ranks
    with handle_user_errors():  # error: <message>, exit 2, also appended to the run's train.log
        metrics = run(cfg)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return value


def prepare_argv(argv: list[str], check: bool = True) -> list[str]:
    """The command line Hydra runs: ``model=<paper>`` presets expanded (:mod:`.utils.presets`),
    ``run_dir=<folder>`` turned into the resume overrides (:mod:`.utils.resume`), and the composed
    config checked before Hydra creates any folder (:mod:`.utils.validate`, memory preflight)."""
    args = expand_model_presets(argv[1:])
    argv = argv_for_resume([argv[0], *args])
    if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0":
        check = False  # a DDP rank relaunched by Lightning: rank 0 checked (and holds GPU memory by now)
    if check:
        precheck_train(argv[1:])
    return argv


def main() -> float | None:
    """CLI entry point: presets, resume overrides and the pre-run checks (:func:`prepare_argv`), then Hydra.

    A user error (bad value, missing data, unusable checkpoint, memory) prints ``error: <message>`` and
    exits with status 2 (:mod:`.utils.errors`); ``HYDRA_FULL_ERROR=1`` shows the traceback.
    """
    global _ARGV
    _ARGV = list(sys.argv)
    with handle_user_errors(log_file=False):  # before Hydra: no run folder yet, nothing is written
        sys.argv = prepare_argv(sys.argv)
    return _hydra_main()


if __name__ == "__main__":
    main()
