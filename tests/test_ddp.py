"""DDP on CPU (gloo): 2 processes with batch b give the single-process result with batch 2b; metric
states synced, teachers on every rank, the same beta on all ranks, SyncBatchNorm switch."""

from __future__ import annotations

import json
import os

import pytest

from .helpers import REPO, compose_cfg, run_module

COMMON = ["experiment=ddffnet_stage2", "model=dffnet_small", "data.image_size=[64,64]", "data.render_size=[64,64]",
          "data.num_workers=0", "data.train_length=8", "data.val_length=4", "data.test_length=4",
          "data.eval_batch_size=2", "data.preset=shallow", "trainer.max_epochs=2",
          "callbacks.distillation.switch_epoch=0", "callbacks.distillation.last_epoch=2", "logger=csv",
          "~callbacks.progress_bar", "trainer.enable_progress_bar=false", "task_name=ddp",
          "+callbacks.probe._target_=tests.ddp_probe.DDPProbe", "+callbacks.probe.out=${paths.output_dir}"]
METRICS = ("test/synthetic/mae", "test/synthetic/fbeta", "test/synthetic/iou", "val/synthetic/mae",
           "val/synthetic/fbeta", "val/synthetic/iou", "test/synthetic/loss")


def test_sync_batchnorm_switch_converts_every_bn_layer_of_the_task(tmp_path):
    import hydra
    from torch import nn

    from dbd_lightning.runs.task_builder import build_task

    cfg = compose_cfg(tmp_path, ["model=dffnet_small", "trainer=ddp_cpu", "trainer.sync_batchnorm=true", "logger=none"])
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    task = build_task(cfg)
    n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in task.modules())
    # what Lightning applies to the module when a DDP strategy starts (trainer.sync_batchnorm=true)
    task = trainer.strategy._layer_sync.apply(task)
    assert n_bn > 0 and sum(isinstance(m, nn.SyncBatchNorm) for m in task.modules()) == n_bn
    names = set(build_task(cfg).state_dict())
    assert set(task.state_dict()) == names  # checkpoints stay loadable either way


def test_ddp_trainer_configs_compose(tmp_path):
    gpu = compose_cfg(tmp_path, ["trainer=ddp"])
    assert gpu.trainer.strategy == "ddp" and gpu.trainer.sync_batchnorm is True and gpu.trainer.accelerator == "gpu"
    assert gpu.trainer.plugins[0]._target_.endswith("AtomicCheckpointIO")
    cpu = compose_cfg(tmp_path, ["trainer=ddp_cpu"])
    assert cpu.trainer.accelerator == "cpu" and cpu.trainer.devices == 2 and cpu.trainer.sync_batchnorm is False


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))  # tests.*
    single = run_module("dbd_lightning.train", [*COMMON, "trainer=cpu", "data.batch_size=4",
                                                "hydra.run.dir=single"], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    # BatchNorm is kept in eval mode by the probe in both runs: per-process BN statistics differ from the
    # single-process ones by design, and torch's SyncBatchNorm (DDP wrapping refuses it on CPU) needs GPUs
    ddp = run_module("dbd_lightning.train", [*COMMON, "trainer=ddp_cpu", "trainer.devices=2", "data.batch_size=2",
                                             "hydra.run.dir=ddp"], cwd=tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    one = json.loads((tmp_path / "single" / "metrics.json").read_text())
    two = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    diffs = {k: abs(one[k] - two[k]) for k in METRICS}
    print("single vs DDP |diff|:", diffs)
    for key in METRICS:
        assert two[key] == pytest.approx(one[key], abs=1e-4), (key, one[key], two[key])

    p1 = json.loads((tmp_path / "single" / "probe_rank0.json").read_text())
    ranks = [json.loads((tmp_path / "ddp" / f"probe_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and p1["world_size"] == 1
    # beta: identical on both ranks and equal to eq. 9 with switch_epoch=0, last_epoch=2
    assert ranks[0]["betas"] == ranks[1]["betas"] == p1["betas"] == {"0": 3.0, "1": 1.5}
    # teachers live on every rank, frozen, and fed every batch
    for r in ranks:
        assert set(r["teachers"]) == {"defocus", "depth"}
        assert all(not t["training"] and not t["requires_grad"] and t["in_batch"] for t in r["teachers"].values())
    # data: at every step the two ranks' batches together are the single-process batch
    assert len(p1["names"]) == len(ranks[0]["names"]) == len(ranks[1]["names"]) == 4
    for step, names in enumerate(p1["names"]):
        assert sorted(names) == sorted(ranks[0]["names"][step] + ranks[1]["names"][step])
    # only rank 0 wrote the run's files
    assert (tmp_path / "ddp" / "metrics.json").is_file() and (tmp_path / "ddp" / "results.md").is_file()
