"""Train (and test) a model: ``python -m dbd_lightning.train model=dffnet data=synthetic``.

Everything comes from the Hydra config tree (``conf/train.yaml``); multirun
sweeps work as usual (``-m loss=bce,bce_edge``). Each run's output folder holds
the resolved config, checkpoints (best + last), logger files and metrics.json.

Continue a killed run in its own folder with ``run_dir=<run folder> ckpt_path=last``
(:mod:`dbd_lightning.utils.resume`). Before training, every output folder is
checked for writability and free space (:mod:`dbd_lightning.utils.preflight`).
Under DDP only global rank 0 writes the run's files.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hydra  # noqa: E402
import lightning as L  # noqa: E402
from lightning.pytorch.callbacks import LearningRateMonitor  # noqa: E402
from lightning.pytorch.utilities import rank_zero_only  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from .metrics.describe import describe_convention  # noqa: E402
from .ops.cpu_memory import reuse_freed_memory  # noqa: E402
from .utils.checkpoint import load_weights  # noqa: E402
from .utils.compile import compile_net  # noqa: E402
from .utils.config import build_datamodule, build_task, config_dir, instantiate_dict  # noqa: E402
from .utils.preflight import check_free_space, check_writable, output_folders, required_free_bytes  # noqa: E402
from .utils.report import results_table, scalar_metrics, write_metrics  # noqa: E402
from .utils.resume import argv_for_resume, config_changes, keep_csv_history, resolve_ckpt_path  # noqa: E402

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
    callbacks = instantiate_dict(cfg.get("callbacks"))
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
    metrics = run(cfg)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return value


def main() -> float | None:
    """CLI entry point: ``run_dir=<folder>`` becomes Hydra overrides (resume), then Hydra runs."""
    global _ARGV
    _ARGV = list(sys.argv)
    sys.argv = argv_for_resume(sys.argv)
    return _hydra_main()


if __name__ == "__main__":
    main()
