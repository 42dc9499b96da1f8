"""W&B (offline): summary at the best epoch, metric tables, sweep grouping, eval report run."""

from __future__ import annotations

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict, read_write

from dbd_lightning.callbacks.wandb_tools import DBDWandbLogger, hydra_run_names, metrics_table_rows

from .helpers import compose_cfg


def test_summary_holds_the_best_epoch_not_the_last(tmp_path):
    lg = DBDWandbLogger(save_dir=str(tmp_path), offline=True, project="t", name="n", group="g",
                        monitor="val/a/mae", mode="min", sweep_group=False)
    history = [(0.5, 0.10, 0.7), (0.3, 0.20, 0.6), (0.4, 0.90, 0.1)]  # (mae of a, fbeta of a, mae of b)
    for epoch, (mae, f, mae_b) in enumerate(history):
        lg.log_metrics({"val/a/mae": mae, "val/a/fbeta": f, "val/b/mae": mae_b, "epoch": epoch}, step=10 * epoch)
    lg.log_metrics({"test/a/mae": 0.25, "test/a/fbeta": 0.5, "test/b/mae": 0.35}, step=30)
    lg.finalize("success")
    summary = lg.experiment.summary
    assert summary["val/a/mae"] == 0.3 and summary["val/a/fbeta"] == 0.2 and summary["val/b/mae"] == 0.6
    assert summary["best/epoch"] == 1 and summary["best/step"] == 10 and summary["best/val/a/mae"] == 0.3
    assert summary["test/a/mae"] == 0.25
    assert ("test/table", (("a", 0.25, 0.5), ("b", 0.35, None))) in lg._tables_logged
    lg.experiment.finish()
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_metric_table_rows_and_mode_check():
    cols, rows = metrics_table_rows({"val/x/iou": 0.1, "val/x/mae": 0.2, "val/y/mae": 0.3, "test/x/mae": 9}, "val")
    assert cols == ["dataset", "mae", "iou"] and rows == [["x", 0.2, 0.1], ["y", 0.3, None]]
    with pytest.raises(ValueError, match="mode must be"):
        DBDWandbLogger(offline=True, mode="best")


def test_multirun_jobs_share_the_sweep_group(tmp_path):
    cfg = compose_cfg(tmp_path, ["model=dffnet_small"])
    assert hydra_run_names("train", "train") == ("train", "train")  # single run: unchanged
    hc = HydraConfig.get()
    with read_write(hc), open_dict(hc):
        hc.mode = RunMode.MULTIRUN
        hc.sweep.dir = "/x/sweep/multiruns/2026-01-01_00-00-00"
        hc.job.override_dirname = "loss=bce"
    assert hydra_run_names("sweep", "sweep") == ("sweep/2026-01-01_00-00-00", "sweep/loss=bce")
    assert cfg.logger.wandb._target_.endswith("DBDWandbLogger") and cfg.logger.wandb.monitor == "val/synthetic/mae"
    assert cfg.logger.wandb.mode == "min"


def _offline_run_ids(folder) -> list[str]:
    return sorted(p.name.rsplit("-", 1)[-1] for p in folder.rglob("offline-run-*") if p.is_dir())


def test_each_run_in_one_process_gets_its_own_wandb_run(tmp_path):
    # sequential multirun jobs and pipeline stages share a process: train.run must finish each
    # W&B run, or the next WandbLogger attaches to the still-open one (same id, same name)
    import wandb

    from dbd_lightning.train import run

    from .helpers import TINY

    quick = ["model=dffnet_small", "logger=wandb", *TINY, "++trainer.fast_dev_run=true", "~callbacks.lr_monitor"]
    run(compose_cfg(tmp_path / "job0", [*quick, "logger.wandb.name=job0"]))
    assert wandb.run is None
    run(compose_cfg(tmp_path / "job1", [*quick, "logger.wandb.name=job1"]))
    assert wandb.run is None
    (id0,), (id1,) = _offline_run_ids(tmp_path / "job0"), _offline_run_ids(tmp_path / "job1")
    assert id0 != id1


def test_wandb_run_is_finished_when_training_crashes(tmp_path):
    import wandb

    from dbd_lightning.train import run

    from .helpers import TINY

    cfg = compose_cfg(tmp_path, ["model=dffnet_small", "logger=wandb", *TINY, "++trainer.fast_dev_run=true",
                                 "+model.optimizer.betas=[2.0,0.9]"])  # Adam refuses beta1 >= 1 at fit start
    with pytest.raises(ValueError, match="beta"):
        run(cfg)
    assert wandb.run is None
