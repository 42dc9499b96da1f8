"""The two-stage entry point and a table sweep through the real Hydra CLI (subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from dbd_lightning.utils.config import config_dir

from .helpers import run_module

SMALL = ["model.net.encoder=resnet18", "logger=none", "data.image_size=[64,64]", "data.render_size=[64,64]",
         "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0", "data.train_length=4",
         "data.val_length=2", "data.test_length=2", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
         "~callbacks.lr_monitor", "hydra.sweep.subdir=${hydra.job.num}"]


def test_table_sweeps_declare_the_paper_grids():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        t4 = compose("train", overrides=["experiment=ddffnet_table4"], return_hydra_config=True)
        t5 = compose("train", overrides=["experiment=ddffnet_table5"], return_hydra_config=True)
        t6 = compose("train", overrides=["experiment=ddffnet_table6"], return_hydra_config=True)
    assert dict(t4.hydra.sweeper.params) == {"model": "dffnet,pdnet", "pipeline.stage1_loss": "bce,bce_edge",
                                             "loss": "bce,bce_edge"}
    assert dict(t5.hydra.sweeper.params) == {"model": "dffnet,dffnet_vgg16"}
    assert dict(t6.hydra.sweeper.params) == {"model.net.dense_guidance": "true,false"}
    assert t4.pipeline.stage1_experiment == "dffnet_paper"


def test_table6_multirun_runs_two_stage_jobs(tmp_path):
    proc = run_module("dbd_lightning.train", ["-m", "experiment=ddffnet_table6", "data=synthetic", *SMALL], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted((tmp_path / "outputs" / "ddffnet_table6" / "multiruns").glob("*/[01]"))
    assert len(jobs) == 2
    for job, guidance in zip(jobs, ("true", "false"), strict=True):
        ckpt = Path((job / "stage1_checkpoint.txt").read_text().strip())
        assert ckpt.is_file() and ckpt.is_relative_to(job / "stage1")
        assert f"dense_guidance: {guidance}" in (job / "stage1" / "config_resolved.yaml").read_text()
        assert (job / "stage2" / "metrics.json").is_file()


def test_two_stage_module_entry_point(tmp_path):
    proc = run_module("dbd_lightning.pipelines.two_stage", ["model=dffnet_small", *SMALL[1:]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "ddffnet_two_stage" / "runs").glob("*"))
    assert len(runs) == 1
    assert (runs[0] / "stage1_checkpoint.txt").read_text().strip().endswith(".ckpt")
    assert (runs[0] / "stage2" / "checkpoints" / "last.ckpt").is_file()
    # each stage folder is a run folder for eval (rebuilds the DistillationTask with its projectors)
    ev = run_module("dbd_lightning.eval", [f"run_dir={runs[0] / 'stage2'}", "ckpt=last"], cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr[-3000:]
    stage2 = json.loads((runs[0] / "stage2" / "metrics.json").read_text())
    eval_runs = sorted((tmp_path / "outputs" / "eval" / "runs").iterdir())
    evaluated = json.loads((eval_runs[-1] / "metrics.json").read_text())
    assert set(evaluated) >= {"test/synthetic/mae", "test/synthetic/fbeta"}
    assert 0 <= evaluated["test/synthetic/mae"] <= 1 and "test/synthetic/mae" in stage2
