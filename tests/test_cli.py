"""The entry points as a user runs them (subprocesses): train -> files -> eval, multirun, errors."""

import json

import pytest

from .helpers import TINY, run_module


def _only_run_dir(root):
    runs = [p for p in root.glob("*/runs/*") if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_train_saves_everything_and_eval_reproduces_the_test_numbers(tmp_path):
    proc = run_module("dbd_lightning.train", ["model=dffnet_small", "trainer.max_epochs=2", "task_name=t", *TINY],
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = _only_run_dir(tmp_path / "outputs")
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "config_resolved.yaml").is_file()
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and any(n.startswith("epoch_") for n in ckpts)
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert list((run_dir / "wandb").glob("offline-run-*")), "W&B offline run folder missing"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/synthetic/mae", "test/synthetic/fbeta", "test/synthetic/iou", "val/synthetic/mae"):
        assert key in metrics
    assert "| synthetic |" in proc.stdout and "Convention (ddffnet)" in proc.stdout

    ev = run_module("dbd_lightning.eval", [f"run_dir={run_dir}"], cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr[-3000:]
    eval_runs = sorted((tmp_path / "outputs" / "eval" / "runs").iterdir())
    eval_metrics = json.loads((eval_runs[-1] / "metrics.json").read_text())
    for key in ("test/synthetic/mae", "test/synthetic/fbeta", "test/synthetic/iou"):
        assert eval_metrics[key] == pytest.approx(metrics[key], abs=1e-6)


def test_multirun_sweep_over_losses(tmp_path):
    proc = run_module("dbd_lightning.train",
                      ["-m", "loss=bce,bce_edge", "model=dffnet_small", "debug=fdr", "task_name=sweep", *TINY],
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in (tmp_path / "outputs" / "sweep" / "multiruns").glob("*/*") if p.is_dir())
    assert len(jobs) == 2 and "loss=bce" in jobs[0] and "loss=bce_edge" in jobs[1]


def test_bad_config_key_fails_with_did_you_mean(tmp_path):
    proc = run_module("dbd_lightning.train", ["model.net.encoderr=resnet18"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown config key 'model.net.encoderr': did you mean model.net.encoder?" in proc.stderr
    assert "+model.net.encoderr" not in proc.stderr  # not Hydra's advice to add the typo


def test_missing_data_root_fails_clearly(tmp_path):
    proc = run_module("dbd_lightning.train", ["data=folder", f"data.root={tmp_path}/nowhere", "logger=none"],
                      cwd=tmp_path)
    assert proc.returncode != 0
    assert "dataset folder(s) not found" in proc.stderr and "nowhere/image" in proc.stderr


def test_eval_of_a_folder_that_is_no_run_fails_clearly(tmp_path):
    proc = run_module("dbd_lightning.eval", [f"run_dir={tmp_path}"], cwd=tmp_path)
    assert proc.returncode != 0 and "is not a train run folder" in proc.stderr
