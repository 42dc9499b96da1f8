"""Resume: ``run_dir=<run> ckpt_path=last`` continues a run with the same data order, augmentation,
optimizer / scheduler / RNG state, and ends where an uninterrupted run ends (also after SIGKILL)."""

from __future__ import annotations

import json
import os
import random
import signal

import lightning as L
import numpy as np
import pytest
import torch

from dbd_lightning.callbacks.resume import collect_rng_state, set_rng_state
from dbd_lightning.data.datamodule import DBDDataModule
from dbd_lightning.data.sampler import EpochSeededSampler
from dbd_lightning.data.samples import TransformedDataset
from dbd_lightning.data.synthetic.dataset import SyntheticDefocusDataset
from dbd_lightning.data.transforms import build_eval_transform, build_train_transform
from dbd_lightning.runs.resume import argv_for_resume, resolve_ckpt_path
from dbd_lightning.train import run

from .helpers import REPO, compose_cfg, run_module

SMALL = ["model=dffnet_small", "data.image_size=[64,64]", "data.render_size=[64,64]", "data.batch_size=2",
         "data.eval_batch_size=2", "data.num_workers=0", "data.val_length=2", "data.test_length=2",
         "data.preset=shallow"]
QUIET = [*SMALL, "logger=none", "~callbacks.model_summary", "~callbacks.progress_bar", "~callbacks.lr_monitor",
         "trainer.enable_progress_bar=false"]


# ------------------------------------------------------------------ command line and paths
def test_run_dir_becomes_hydra_overrides():
    argv = argv_for_resume(["train", "model=x", "run_dir=out/runs/a b"])
    assert argv[:3] == ["train", "model=x", "run_dir=out/runs/a b"]
    assert "hydra.run.dir='out/runs/a b'" in argv and "ckpt_path=last" in argv
    assert any(a.startswith("hydra.output_subdir=.hydra_resume/") for a in argv)
    # explicit choices win; nothing added without run_dir
    argv = argv_for_resume(["train", "run_dir=r", "ckpt_path=r/checkpoints/epoch_001.ckpt", "hydra.run.dir=elsewhere"])
    assert argv.count("hydra.run.dir=elsewhere") == 1 and not any(a == "ckpt_path=last" for a in argv)
    assert argv_for_resume(["train", "model=x"]) == ["train", "model=x"]
    with pytest.raises(ValueError, match="multirun"):
        argv_for_resume(["train", "-m", "run_dir=r"])


def test_ckpt_path_resolution(tmp_path):
    cfg = compose_cfg(tmp_path, [*QUIET, "ckpt_path=last"])
    assert resolve_ckpt_path(cfg, tmp_path) is None  # auto-resume of a fresh run: start fresh
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert resolve_ckpt_path(cfg, tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    old = tmp_path / "old"
    cfg.run_dir = str(old)
    with pytest.raises(FileNotFoundError, match="is not a train run folder"):
        resolve_ckpt_path(cfg, tmp_path)
    (old / ".hydra").mkdir(parents=True)
    (old / ".hydra" / "config.yaml").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has no checkpoints/last.ckpt"):
        resolve_ckpt_path(cfg, tmp_path)
    cfg.ckpt_path = None
    with pytest.raises(ValueError, match="use ckpt_path=last"):
        resolve_ckpt_path(cfg, tmp_path)
    cfg.run_dir, cfg.ckpt_path = None, str(tmp_path / "nope.ckpt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_ckpt_path(cfg, tmp_path)


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    state = collect_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.save({"rng": state}, tmp_path / "s.ckpt")
    loaded = torch.load(tmp_path / "s.ckpt", weights_only=True)["rng"]
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    set_rng_state(loaded)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


# ------------------------------------------------------------------ deterministic data
def _train_set(seed=7):
    raw = SyntheticDefocusDataset(length=6, seed=1, preset="shallow", size=32)
    return TransformedDataset(raw, build_train_transform(size=(32, 32)), seed=seed)


def test_augmentation_is_a_function_of_seed_epoch_and_index():
    a, b = _train_set(), _train_set()
    first = a[(1, 4)]["image"]
    for k in (0, 1, 2, 3):  # b's augmentation stream is advanced differently first
        b[(0, k)]
    assert torch.equal(first, b[(1, 4)]["image"])
    assert any(not torch.equal(first, a[(e, 4)]["image"]) for e in range(2, 8))  # epochs differ
    assert not torch.equal(first, _train_set(seed=8)[(1, 4)]["image"])


def test_ddp_shards_make_up_the_single_process_batch():
    ds = list(range(16))
    single = list(EpochSeededSampler(ds, num_replicas=1, rank=0, seed=5))
    shards = [list(EpochSeededSampler(ds, num_replicas=2, rank=r, seed=5)) for r in (0, 1)]
    # global step k: single process batch 4 == rank 0 batch 2 + rank 1 batch 2
    for k in range(4):
        assert sorted(single[4 * k:4 * k + 4]) == sorted(shards[0][2 * k:2 * k + 2] + shards[1][2 * k:2 * k + 2])
    s = EpochSeededSampler(ds, num_replicas=1, rank=0, seed=5)
    s.set_epoch(3)
    assert all(e == 3 for e, _ in s) and [i for _, i in s] != [i for _, i in single]


def test_train_loader_of_an_epoch_does_not_depend_on_earlier_epochs():
    def dm():
        return DBDDataModule(train={"s": SyntheticDefocusDataset(length=8, seed=1, preset="shallow", size=32)},
                             train_transform=build_train_transform(size=(32, 32)),
                             eval_transform=build_eval_transform(size=(32, 32)), batch_size=2, seed=11)

    fresh, used = dm().train_dataloader(), dm().train_dataloader()
    for epoch in (0, 1):  # `used` went through epochs 0 and 1 first (an uninterrupted run)
        used.sampler.set_epoch(epoch)
        list(used)
    used.sampler.set_epoch(2)
    fresh.sampler.set_epoch(2)  # a resumed run starts at epoch 2
    for x, y in zip(fresh, used, strict=True):
        assert x["name"] == y["name"] and torch.equal(x["image"], y["image"])


# ------------------------------------------------------------------ full resume, in process
class SimulatedCrash(RuntimeError):
    pass


class CrashAt(L.Callback):
    """Test helper: die at a global step (``sigkill=True``: SIGKILL the process, no cleanup at all)."""

    def __init__(self, at_step: int, sigkill: bool = False) -> None:
        self.at_step, self.sigkill = at_step, sigkill

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at_step:
            if self.sigkill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise SimulatedCrash(f"crash at step {self.at_step}")


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_end(a_dir, b_dir, a_metrics, b_metrics):
    a, b = _state(a_dir / "checkpoints" / "last.ckpt"), _state(b_dir / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] and a["epoch"] == b["epoch"]
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    for key in ("test/synthetic/mae", "test/synthetic/fbeta", "test/synthetic/iou", "val/synthetic/mae"):
        assert b_metrics[key] == pytest.approx(a_metrics[key], abs=1e-6), key


def test_run_crashed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    # 4 samples, batch 2: 2 steps per epoch, 2 epochs; the crash hits step 3 (epoch 1, second batch)
    common = [*QUIET, "data.train_length=4", "trainer.max_epochs=2", "trainer.num_sanity_val_steps=0"]
    full = run(compose_cfg(tmp_path / "full", common))
    crash = ["+callbacks.crash._target_=tests.test_resume.CrashAt", "+callbacks.crash.at_step=3"]
    with pytest.raises(SimulatedCrash):
        run(compose_cfg(tmp_path / "part", [*common, *crash]))
    assert _state(tmp_path / "part" / "checkpoints" / "last.ckpt")["global_step"] == 2  # end of epoch 0
    resumed = run(compose_cfg(tmp_path / "part", [*common, f"run_dir={tmp_path / 'part'}", "ckpt_path=last"]))
    _assert_same_end(tmp_path / "full", tmp_path / "part", full, resumed)


@pytest.mark.slow
def test_sigkilled_cli_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """The user's path: a CLI run is SIGKILLed mid-epoch, then `run_dir=<run> ckpt_path=last` finishes it."""
    common = [*SMALL, "data.train_length=8", "trainer.max_epochs=3", "logger=csv", "task_name=r",
              "~callbacks.progress_bar", "trainer.enable_progress_bar=false"]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))  # tests.*
    full = run_module("dbd_lightning.train", [*common, "hydra.run.dir=full"], cwd=tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    killed = run_module("dbd_lightning.train", [*common, "hydra.run.dir=part",
                                                "+callbacks.crash._target_=tests.test_resume.CrashAt",
                                                "+callbacks.crash.at_step=6", "+callbacks.crash.sigkill=true"],
                        cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    assert _state(tmp_path / "part" / "checkpoints" / "last.ckpt")["global_step"] == 4  # end of epoch 0
    # the run's own overrides (.hydra/overrides.yaml) come back by themselves; the test-only crash is removed
    resumed = run_module("dbd_lightning.train", ["run_dir=part", "ckpt_path=last", "~callbacks.crash"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continuing run part" in resumed.stderr + resumed.stdout
    assert (tmp_path / "part" / "csv" / "metrics.before_resume_1.csv").is_file()
    assert list((tmp_path / "part" / ".hydra_resume").iterdir())
    metrics = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("full", "part")]
    _assert_same_end(tmp_path / "full", tmp_path / "part", *metrics)


def test_test_ckpt_last_scores_the_final_weights(tmp_path, caplog):
    # test_ckpt=last loads <run>/checkpoints/last.ckpt: the same numbers as the weights in memory after fit
    # (test_ckpt=current), with the file named in the log
    common = [*QUIET, "data.train_length=4", "trainer.max_epochs=2", "trainer.num_sanity_val_steps=0"]
    current = run(compose_cfg(tmp_path / "current", [*common, "test_ckpt=current"]))
    with caplog.at_level("INFO", logger="dbd_lightning.runner"):
        last = run(compose_cfg(tmp_path / "last", [*common, "test_ckpt=last"]))
    assert str(tmp_path / "last" / "checkpoints" / "last.ckpt") in caplog.text
    for key in ("test/synthetic/mae", "test/synthetic/fbeta", "test/synthetic/iou"):
        assert last[key] == pytest.approx(current[key], abs=1e-6), key
