"""Ctrl-C (SIGINT) / SIGTERM during training: one last line with the exact resume command (also in the
run's train.log), exit status 130 / 143, and last.ckpt is a complete checkpoint of a finished epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from dbd_lightning.utils.interrupts import deferred_interrupts, handle_interrupts

SMALL = ["model=dffnet_small", "data.image_size=[64,64]", "data.render_size=[64,64]", "data.batch_size=2",
         "data.eval_batch_size=2", "data.num_workers=0", "data.val_length=2", "data.test_length=2",
         "data.preset=shallow", "data.train_length=4"]  # 2 steps per epoch
QUIET = ["~callbacks.progress_bar", "~callbacks.model_summary", "trainer.enable_progress_bar=false",
         "trainer.num_sanity_val_steps=0", "logger=none"]


def test_a_signal_inside_a_deferred_section_acts_after_it(tmp_path):
    log_file = tmp_path / "train.log"
    log_file.write_text("")
    before = signal.getsignal(signal.SIGTERM)
    steps = []
    with pytest.raises(SystemExit) as end:
        with handle_interrupts(lambda: "advice", log_file=log_file), deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)  # e.g. between saving epoch_001.ckpt and last.ckpt
            steps.append("the section ran to its end")
        steps.append("not reached")
    assert steps == ["the section ran to its end"]
    assert end.value.code == 143
    assert "[WARNING] - interrupted by SIGTERM: advice" in log_file.read_text()
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
    with deferred_interrupts():  # nothing installed: no effect
        steps.append("plain")


def test_an_error_that_follows_a_signal_is_reported_as_the_signal(tmp_path):
    """SIGTERM to the process group: the loader's workers die too, and the job may end with the loader's
    RuntimeError rather than the handler's exception; it is still the signal's line and 143 (before: a
    crash report, exit 1, no resume command). Without a signal received, an error stays an error."""
    log_file = tmp_path / "train.log"
    log_file.write_text("")
    with pytest.raises(SystemExit) as end:
        with handle_interrupts(lambda: "advice", log_file=log_file):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
            except KeyboardInterrupt:
                pass  # swallowed on the way, as a library's cleanup may do
            raise RuntimeError("DataLoader worker (pid 1234) is killed by signal: Terminated.")
    assert end.value.code == 143
    assert "interrupted by SIGTERM: advice" in log_file.read_text()
    with pytest.raises(RuntimeError, match="worker"):
        with handle_interrupts(lambda: "advice", log_file=log_file):
            raise RuntimeError("DataLoader worker (pid 1234) is killed by signal: Killed.")  # the OOM killer


@pytest.mark.parametrize("sig,group", [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
                         ids=["SIGINT", "SIGTERM", "SIGTERM-to-the-group-with-a-worker"])
def test_interrupted_training_ends_with_the_resume_command(tmp_path, sig, group):
    env = dict(os.environ, WANDB_MODE="offline", HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1",
               OMP_NUM_THREADS="1", DBD_LOG_DIR=str(tmp_path / "outputs"))
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    workers = ["data.num_workers=1"] if group else []  # `timeout` / `kill -- -PGID` also end the worker
    proc = subprocess.Popen([sys.executable, "-m", "dbd_lightning.train", *SMALL, *QUIET, *workers,
                             "trainer.max_epochs=100000", "hydra.run.dir=run"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=group,
                            # as started from a terminal (a shell's background job would ignore SIGINT)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 540
        while not last.is_file():  # training has started and finished an epoch
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no checkpoint within the time limit"
            time.sleep(0.2)
        time.sleep(0.5)  # somewhere in a later epoch (or its checkpoint saves)
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + sig, err[-3000:]
    state = torch.load(last, map_location="cpu", weights_only=True)  # complete and loadable
    epoch = state["epoch"]
    assert state["global_step"] == 2 * (epoch + 1)  # saved at the end of an epoch, not in the middle of one
    line = err.strip().splitlines()[-1]
    assert line == (f"interrupted by {sig.name}: {last} holds the end of epoch {epoch}; continue with: "
                    f"python -m dbd_lightning.train run_dir={run} ckpt_path=last"), err[-2000:]
    assert line in (run / "train.log").read_text()
    assert "Traceback" not in err
