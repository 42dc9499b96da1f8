"""Guards: NaN/Inf loss stops training before the weights change; atomic checkpoint writes; output
folders checked before training (unwritable, not a folder, disk full)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from dbd_lightning.callbacks import NonFiniteGuard, NonFiniteLossError
from dbd_lightning.train import run
from dbd_lightning.utils import preflight
from dbd_lightning.utils.checkpoint import load_state_dict
from dbd_lightning.utils.checkpoint_io import AtomicCheckpointIO, atomic_torch_save
from dbd_lightning.utils.preflight import OutputDirError, check_writable, checkpoint_bytes

from .helpers import REPO, TINY, compose_cfg, run_module

QUIET = ["model=dffnet_small", "logger=none", *TINY, "~callbacks.model_summary", "~callbacks.progress_bar",
         "~callbacks.lr_monitor", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0"]


class PoisonBatch(L.Callback):
    """Test helper: turn the input of the batch at ``at_step`` into NaN (a corrupt sample)."""

    seen: dict = {}

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        PoisonBatch.seen["module"] = pl_module
        if trainer.global_step == self.at_step:
            PoisonBatch.seen["before"] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            batch["image"] = batch["image"] * float("nan")


def test_nan_loss_stops_with_clear_message_and_keeps_last_good_checkpoint(tmp_path):
    # 4 samples, batch 2 -> 2 steps per epoch; the batch of step 3 (epoch 1) is corrupt
    cfg = compose_cfg(tmp_path, [*QUIET, "trainer.max_epochs=4", "+callbacks.poison._target_=tests.test_guards.PoisonBatch",
                                 "+callbacks.poison.at_step=3"])
    with pytest.raises(NonFiniteLossError) as err:
        run(cfg)
    msg = str(err.value)
    assert "non-finite training loss (nan) at epoch 1, global step 3" in msg
    assert "last.ckpt" in msg and f"python -m dbd_lightning.train run_dir={tmp_path} ckpt_path=last" in msg
    # the bad step never reached the weights: the module is exactly as before that batch
    module, before = PoisonBatch.seen["module"], PoisonBatch.seen["before"]
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    # last.ckpt is the end of epoch 0 (the last good state), finite, and no later checkpoint was written
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["epoch_000.ckpt", "last.ckpt"]
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0 and last["global_step"] == 2
    assert all(torch.isfinite(v.float()).all() for v in last["state_dict"].values())


def test_nan_before_any_checkpoint_is_a_user_error_that_does_not_advise_a_resume(tmp_path, monkeypatch):
    """CLI: exit 2, one ``error:`` paragraph (also in train.log), no traceback, no resume advice."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))  # tests.*
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    poison = ["+callbacks.poison._target_=tests.test_guards.PoisonBatch", "+callbacks.poison.at_step=0"]
    proc = run_module("dbd_lightning.train", [*QUIET, "trainer.max_epochs=2", *poison, "hydra.run.dir=run"],
                      cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "non-finite training loss (nan) at epoch 0, global step 0" in line
    assert "nothing to resume" in line and "lower model.optimizer.lr" in line and "ckpt_path" not in line
    assert not (tmp_path / "run" / "checkpoints").is_dir() or not list((tmp_path / "run" / "checkpoints").iterdir())
    assert line in (tmp_path / "run" / "train.log").read_text()


def _fake_trainer(precision="32-true"):
    return SimpleNamespace(world_size=1, precision=precision, current_epoch=0, global_step=5, checkpoint_callbacks=[])


def test_guard_checks_gradients_but_not_under_16_mixed():
    guard = NonFiniteGuard(check_grads=True)
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    p.grad = torch.tensor([1.0, float("inf"), 0.0])
    with pytest.raises(NonFiniteLossError, match="non-finite gradient"):
        guard.on_before_optimizer_step(_fake_trainer(), None, opt)
    guard.on_before_optimizer_step(_fake_trainer("16-mixed"), None, opt)  # the scaler skips such steps itself
    NonFiniteGuard(check_grads=False).on_before_optimizer_step(_fake_trainer(), None, opt)
    p.grad = torch.tensor([1e30, -1e30, 0.0])  # huge but finite: no false alarm (max-norm, no overflow)
    guard.on_before_optimizer_step(_fake_trainer(), None, opt)
    guard.on_before_backward(_fake_trainer(), None, torch.tensor(1e30))
    with pytest.raises(NonFiniteLossError, match=r"loss \(inf\)"):
        guard.on_before_backward(_fake_trainer(), None, torch.tensor(float("inf")))


# ------------------------------------------------------------------ atomic checkpoint writes
def test_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    good = {"state_dict": {"w": torch.arange(1000.0)}, "epoch": 1}
    io.save_checkpoint(good, path)
    real_save = torch.save

    def crash_mid_write(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")  # some bytes reach the file, then the process "dies"
        raise KeyboardInterrupt("simulated crash during torch.save")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "epoch": 2}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(load_state_dict(path)["w"], good["state_dict"]["w"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # temp file cleaned up

    def crash_before_rename(src, dst):
        raise OSError(errno.EIO, "simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash_before_rename)
    with pytest.raises(OSError, match="simulated"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "epoch": 3}, path)
    monkeypatch.undo()
    assert torch.equal(load_state_dict(path)["w"], good["state_dict"]["w"])
    io.save_checkpoint({"state_dict": {"w": torch.zeros(7)}, "epoch": 4}, path)
    assert torch.equal(load_state_dict(path)["w"], torch.zeros(7))


def test_stale_partial_file_of_a_killed_save_is_removed_and_never_picked_as_checkpoint(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    stale = folder / ".last.ckpt.partial-123-abcdef12"
    stale.write_bytes(b"truncated")
    assert not stale.name.endswith(".ckpt")  # ModelCheckpoint / eval globbing *.ckpt never see it
    atomic_torch_save({"x": torch.ones(2)}, folder / "last.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]


def test_trainer_config_wires_the_atomic_checkpoint_io(tmp_path):
    cfg = compose_cfg(tmp_path, [*QUIET, "trainer.max_epochs=1"])
    import hydra

    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


_SAVER = r"""
import sys, torch
from dbd_lightning.utils.checkpoint_io import atomic_torch_save
path = sys.argv[1]
state = {"w": torch.randn(8 * 1024 * 1024)}  # 32 MiB: most of the time is spent writing
for i in range(10_000):
    state["i"] = torch.tensor(i)
    state["w"][0] = i
    atomic_torch_save(state, path)
    print("saved", i, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_repeated_saves_never_corrupts_the_file(tmp_path):
    path = tmp_path / "last.ckpt"
    for kill_after in (1, 3, 6):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True,
                                cwd=REPO)
        for _ in range(kill_after):
            assert proc.stdout.readline().startswith("saved")
        os.kill(proc.pid, signal.SIGKILL)  # lands in the middle of the next save most of the time
        proc.wait()
        proc.stdout.close()
        state = load_state_dict(path)
        assert int(state["i"]) >= kill_after - 1 and float(state["w"][0]) == float(state["i"])


# ------------------------------------------------------------------ output folders
def test_checkpoint_folder_that_cannot_be_created_fails_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = compose_cfg(tmp_path, [*QUIET, f"callbacks.model_checkpoint.dirpath={blocker}/ckpts"])
    with pytest.raises(OutputDirError) as err:
        run(cfg)
    msg = str(err.value)
    assert "callbacks.model_checkpoint.dirpath" in msg and str(blocker) in msg
    assert "not a folder" in msg
    assert not (tmp_path / "config_resolved.yaml").exists()  # nothing ran


def test_full_disk_fails_before_training_with_the_numbers(tmp_path, monkeypatch):
    cfg = compose_cfg(tmp_path, [*QUIET])
    real = preflight.shutil.disk_usage
    monkeypatch.setattr(preflight.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=5 * preflight.MIB))
    with pytest.raises(OutputDirError, match=r"not enough free disk space .* 5 MiB free, the run needs about"):
        run(cfg)
    assert not list((tmp_path / "checkpoints").iterdir())  # checked (probe written and removed), nothing saved


def test_write_probe_reports_a_full_disk(tmp_path, monkeypatch):
    def enospc(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(preflight.os, "write", enospc)
    with pytest.raises(OutputDirError, match="the disk is full"):
        check_writable(tmp_path / "out", role="output folder paths.output_dir")
    assert not list((tmp_path / "out").iterdir())  # probe removed


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_is_reported(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputDirError, match="permission denied"):
            check_writable(ro / "run")
    finally:
        ro.chmod(0o700)


def test_checkpoint_size_estimate_matches_a_real_checkpoint(tmp_path):
    cfg = compose_cfg(tmp_path, [*QUIET, "trainer.max_epochs=1"])
    run(cfg)
    from dbd_lightning.runs.task_builder import build_task

    estimate = checkpoint_bytes(build_task(cfg))
    actual = (tmp_path / "checkpoints" / "last.ckpt").stat().st_size
    assert 0.9 * actual < estimate < 1.1 * actual, (estimate, actual)


def test_unwritable_run_folder_fails_before_hydra_writes_anything(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    proc = run_module("dbd_lightning.train", [f"hydra.run.dir={blocker}/run", "debug=fdr"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "cannot write the output folder (hydra.run.dir)" in proc.stderr and str(blocker) in proc.stderr


def test_fast_dev_run_writes_no_checkpoint_but_a_real_run_does(tmp_path):
    # Lightning 2.6.6's ModelCheckpoint.on_train_end saves last.ckpt even under fast_dev_run;
    # ours does not (a paper-size smoke run would leave a 0.5-1 GB file behind)
    run(compose_cfg(tmp_path / "fdr", [*QUIET, "++trainer.fast_dev_run=true"]))
    assert not list((tmp_path / "fdr").rglob("*.ckpt"))
    metrics = run(compose_cfg(tmp_path / "fit", [*QUIET, "trainer.max_epochs=1"]))
    assert sorted(p.name for p in (tmp_path / "fit" / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    last = torch.load(tmp_path / "fit" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    # the state key keeps Lightning's class name (runs.resolver.recorded_best looks for it)
    (state,) = [v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint{'monitor': 'val/synthetic/mae'")]
    assert state["best_model_path"].endswith("epoch_000.ckpt")
    assert "test/synthetic/mae" in metrics
