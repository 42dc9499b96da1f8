"""The two-stage entry point and a table sweep through the real Hydra CLI (subprocesses)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from dbd_lightning.utils.config import config_dir

from .helpers import run_module

SMALL = ["model.net.encoder=resnet18", "logger=none", "data.image_size=[64,64]", "data.render_size=[64,64]",
         "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0", "data.train_length=4",
         "data.val_length=2", "data.test_length=2", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
         "~callbacks.lr_monitor", "hydra.sweep.subdir=${hydra.job.num}"]


def _sweep_jobs(experiment: str) -> list[list[str]]:
    """The jobs of a table sweep as Hydra's basic sweeper expands them (cartesian product of its params)."""
    cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()])
    axes = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] for o in parsed]
    return [list(job) for job in itertools.product(*axes)]


def _loss_name(loss_cfg) -> str:
    """The paper's loss names: ``bce&el`` when the DOF-edge term is on (eq. 6), else ``bce``."""
    return "bce&el" if loss_cfg.edge_loss is not None and float(loss_cfg.edge_weight) > 0 else "bce"


def _rows(experiment: str) -> set[tuple[str, str, str]]:
    """(model, stage-1 loss, stage-2 loss) rows one table sweep produces; stage 1 alone gives the '-' rows."""
    rows = set()
    for job in _sweep_jobs(experiment):
        stage2 = compose("train", overrides=[f"experiment={experiment}", *job])
        stage1 = compose("train", overrides=[f"experiment={experiment}", *job, f"loss={stage2.pipeline.stage1_loss}"])
        model = stage2.model.net._target_.rsplit(".", 1)[-1]
        rows |= {(model, _loss_name(stage1.loss), "-"), (model, _loss_name(stage1.loss), _loss_name(stage2.loss))}
    return rows


def test_table_sweeps_produce_the_rows_of_the_papers_tables():
    # Table IV of the D-DFFNet paper, copied by hand: (model, stage1 loss, stage2 loss)
    table4 = {("PDNet", "bce&el", "-"), ("PDNet", "bce&el", "bce&el"), ("DFFNet", "bce", "-"),
              ("DFFNet", "bce", "bce"), ("DFFNet", "bce", "bce&el"), ("DFFNet", "bce&el", "-"),
              ("DFFNet", "bce&el", "bce&el")}
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        assert table4 <= _rows("ddffnet_table4")
        # Table V: the same D-DFFNet on ResNeSt-101 and on VGG16
        encoders = {compose("train", overrides=["experiment=ddffnet_table5", *job]).model.net.encoder
                    for job in _sweep_jobs("ddffnet_table5")}
        # Table VI: DFFNet with and without the dense guidance of the DFFM
        t6 = [compose("train", overrides=["experiment=ddffnet_table6", *job]).model.net
              for job in _sweep_jobs("ddffnet_table6")]
    assert encoders == {"resnest101e", "vgg16_bn"}
    assert sorted((n._target_.rsplit(".", 1)[-1], n.dense_guidance) for n in t6) == [("DFFNet", False),
                                                                                      ("DFFNet", True)]


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
    runs = list((tmp_path / "outputs" / "ddffnet_paper" / "runs").glob("*"))
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
    # one epoch: stage 2's test checkpoint (best) holds last.ckpt's weights, so eval reproduces its numbers
    for key in ("test/synthetic/mae", "test/synthetic/fbeta"):
        assert evaluated[key] == pytest.approx(stage2[key], abs=1e-6), key
