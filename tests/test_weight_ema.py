"""``callbacks=ema``: the exponential moving average of the weights (Lightning's EMAWeightAveraging) is
what the checkpoints hold, what validation scores and what a resume continues, checked against the
average computed by hand from the weights after every step."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from dbd_lightning.runs.task_builder import build_task
from dbd_lightning.train import run
from dbd_lightning.utils.config import build_datamodule

from .helpers import compose_cfg, run_module
from .test_resume import QUIET, SimulatedCrash, _state

DECAY = 0.6
COMMON = [*QUIET, "data.train_length=4", "trainer.max_epochs=2", "trainer.num_sanity_val_steps=0",
          "callbacks=ema", f"callbacks.weight_ema.decay={DECAY}"]


class RecordWeights(L.Callback):
    """Test helper: the network's raw floating-point weights and buffers after every optimizer step."""

    steps: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        RecordWeights.steps.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()
                                    if k.startswith("net.") and v.is_floating_point()})


RECORD = ["+callbacks.record._target_=tests.test_weight_ema.RecordWeights"]


def _by_hand(steps: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """avg_1 = w_1;  avg_t = DECAY * avg_(t-1) + (1 - DECAY) * w_t."""
    avg = {k: v.double() for k, v in steps[0].items()}
    for weights in steps[1:]:
        avg = {k: DECAY * avg[k] + (1 - DECAY) * weights[k].double() for k in avg}
    return avg


def test_checkpoint_holds_the_average_computed_by_hand(tmp_path):
    RecordWeights.steps = []
    run(compose_cfg(tmp_path, [*COMMON, *RECORD]))
    assert len(RecordWeights.steps) == 4  # 2 epochs x 2 steps
    saved = _state(tmp_path / "checkpoints" / "last.ckpt")
    expected, raw = _by_hand(RecordWeights.steps), RecordWeights.steps[-1]
    moved = 0
    for key, value in expected.items():
        torch.testing.assert_close(saved["state_dict"][key].double(), value, rtol=0, atol=1e-6, msg=key)
        torch.testing.assert_close(saved["current_model_state"][key], raw[key], rtol=0, atol=0, msg=key)
        moved += not torch.allclose(value.float(), raw[key])
    assert moved > 10  # the average is not the last weights: the check above could fail


def test_validation_scores_the_average(tmp_path):
    # the last epoch's val MAE is the averaged weights' (the checkpoint's state_dict), not the raw ones'
    metrics = run(compose_cfg(tmp_path, COMMON))
    saved = _state(tmp_path / "checkpoints" / "last.ckpt")
    cfg = compose_cfg(tmp_path / "again", [*QUIET, "data.train_length=4", "train=false", "test_ckpt=null"])

    def val_mae(state: dict) -> float:
        task = build_task(cfg)
        task.load_state_dict(state)
        trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
        return trainer.validate(task, datamodule=build_datamodule(cfg), verbose=False)[0]["val/synthetic/mae"]

    assert val_mae(saved["state_dict"]) == pytest.approx(metrics["val/synthetic/mae"], abs=1e-6)
    assert val_mae(saved["current_model_state"]) != pytest.approx(metrics["val/synthetic/mae"], abs=1e-5)


def test_resume_continues_the_average(tmp_path):
    full = run(compose_cfg(tmp_path / "full", COMMON))
    crash = ["+callbacks.crash._target_=tests.test_resume.CrashAt", "+callbacks.crash.at_step=3"]
    with pytest.raises(SimulatedCrash):
        run(compose_cfg(tmp_path / "part", [*COMMON, *crash]))
    resumed = run(compose_cfg(tmp_path / "part", [*COMMON, f"run_dir={tmp_path / 'part'}", "ckpt_path=last"]))
    a, b = _state(tmp_path / "full" / "checkpoints" / "last.ckpt"), _state(tmp_path / "part" / "checkpoints" / "last.ckpt")
    for part in ("state_dict", "current_model_state"):
        for key, value in a[part].items():
            torch.testing.assert_close(b[part][key], value, rtol=0, atol=1e-6, msg=f"{part}: {key}")
    assert resumed["test/synthetic/mae"] == pytest.approx(full["test/synthetic/mae"], abs=1e-6)


def test_the_default_average_settings_pass(tmp_path):
    """A valid decay passes the key checks (the refused values: tests/test_key_checks.py)."""
    from dbd_lightning.utils.validate import validate_train_config

    validate_train_config(compose_cfg(tmp_path, COMMON))


def test_bad_decay_on_the_command_line_exits_2_and_writes_nothing(tmp_path):
    done = run_module("dbd_lightning.train", ["callbacks=ema", "callbacks.weight_ema.decay=2", "hydra.run.dir=run"],
                      cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "callbacks.weight_ema.decay=2 is not valid" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
