"""Evaluate a trained run: ``python -m dbd_lightning.eval run_dir=outputs/train/runs/<stamp>``.

The model is rebuilt from the run's saved config (``<run_dir>/.hydra/config.yaml``)
and its weights loaded with ``torch.load(weights_only=True)``; nothing from the
checkpoint is executed. ``ckpt`` = ``best`` (default), ``last`` or a path;
``data=<option>`` / ``metrics=<option>`` evaluate on another data config or
metric convention than the run's.
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
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402

from .metrics.describe import describe_convention  # noqa: E402
from .utils.checkpoint import load_weights  # noqa: E402
from .utils.config import build_datamodule, build_task, config_dir  # noqa: E402
from .utils.report import results_table, scalar_metrics, write_metrics  # noqa: E402

log = logging.getLogger(__name__)


def find_checkpoint(run_dir: Path, ckpt: str) -> Path:
    """``best`` = the non-``last`` checkpoint of the run (lowest monitored value), ``last``, or a path."""
    folder = run_dir / "checkpoints"
    if ckpt == "last":
        path = folder / "last.ckpt"
    elif ckpt == "best":
        candidates = sorted(p for p in folder.glob("*.ckpt") if not p.name.startswith("last"))
        if not candidates:
            raise FileNotFoundError(f"no best checkpoint in {folder} (found: {sorted(os.listdir(folder)) if folder.is_dir() else 'no folder'})")
        path = candidates[-1]
    else:
        path = Path(ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def load_run_config(run_dir: Path, cfg: DictConfig) -> DictConfig:
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise FileNotFoundError(f"{run_dir} is not a train run folder: {saved} is missing")
    run_cfg = OmegaConf.load(saved)
    with open_dict(run_cfg):
        run_cfg.paths = cfg.paths
        run_cfg.trainer = cfg.trainer
        run_cfg.task_name = "eval"
        if cfg.get("data") is not None:
            run_cfg.data = cfg.data
        if cfg.get("metrics") is not None:
            run_cfg.metrics = cfg.metrics
        run_cfg.data.num_workers = cfg.get("num_workers", run_cfg.data.get("num_workers", 0))
    return run_cfg


def evaluate(cfg: DictConfig) -> dict[str, float]:
    run_dir = Path(cfg.run_dir).expanduser()
    run_cfg = load_run_config(run_dir, cfg)
    ckpt = find_checkpoint(run_dir, str(cfg.ckpt))
    L.seed_everything(cfg.seed, workers=True)
    task = build_task(run_cfg)
    load_weights(task, ckpt)
    datamodule = build_datamodule(run_cfg)
    trainer: L.Trainer = hydra.utils.instantiate(run_cfg.trainer, logger=False, callbacks=[])
    trainer.test(task, datamodule=datamodule)
    metrics = scalar_metrics(trainer.callback_metrics)
    out = Path(cfg.paths.output_dir)
    write_metrics(out / "metrics.json", metrics)
    convention = describe_convention(**OmegaConf.to_container(run_cfg.metrics, resolve=True))
    table = results_table(metrics, "test", convention + f"\nCheckpoint: {ckpt}")
    (out / "results.md").write_text(table + "\n")
    print("\n" + table + f"\n\noutputs: {out}\n", flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
