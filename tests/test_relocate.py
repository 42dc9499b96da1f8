"""Run folders are relocatable: a copied run resumes, tests and is evaluated from its own checkpoints only,
never from the folder it was copied from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from dbd_lightning.callbacks import ModelCheckpoint
from dbd_lightning.runs.resolver import find_checkpoint
from dbd_lightning.runs.resume import argv_for_resume
from dbd_lightning.runs.task_builder import build_task
from dbd_lightning.utils.checkpoint import load_weights
from dbd_lightning.utils.config import build_datamodule

from .helpers import compose_cfg, run_module

SMALL = ["model=dffnet_small", "data.image_size=[64,64]", "data.render_size=[64,64]", "data.batch_size=2",
         "data.eval_batch_size=2", "data.num_workers=0", "data.val_length=2", "data.test_length=2",
         "data.preset=shallow", "data.train_length=4"]
QUIET = ["~callbacks.progress_bar", "~callbacks.model_summary", "trainer.enable_progress_bar=false",
         "trainer.num_sanity_val_steps=0"]


# ------------------------------------------------------------------ the callback state, unit level
def _state(folder: Path) -> dict:
    """A ModelCheckpoint state as Lightning stores it: absolute paths into ``folder``."""
    return {"monitor": "val/mae", "best_model_score": torch.tensor(0.1), "best_model_path": str(folder / "epoch_005.ckpt"),
            "current_score": torch.tensor(0.3), "dirpath": str(folder),
            "best_k_models": {str(folder / "epoch_002.ckpt"): torch.tensor(0.2),
                              str(folder / "epoch_005.ckpt"): torch.tensor(0.1)},
            "kth_best_model_path": str(folder / "epoch_002.ckpt"), "kth_value": torch.tensor(0.2),
            "last_model_path": str(folder / "last.ckpt")}


def _restored(dirpath: Path, resumed_from: Path, state: dict) -> ModelCheckpoint:
    cb = ModelCheckpoint(dirpath=dirpath, monitor="val/mae", mode="min", save_top_k=2, save_last=True)
    cb.on_load_checkpoint(SimpleNamespace(ckpt_path=str(resumed_from)), None, {})
    cb.load_state_dict(state)
    return cb


def test_restored_checkpoint_paths_are_looked_up_by_name_in_the_callbacks_own_folder(tmp_path):
    original, copy = tmp_path / "run" / "checkpoints", tmp_path / "copy" / "checkpoints"
    copy.mkdir(parents=True)
    for name in ("epoch_002.ckpt", "epoch_005.ckpt", "last.ckpt"):
        (copy / name).write_bytes(b"x")
    cb = _restored(copy, copy / "last.ckpt", _state(original))  # the copy resumes its own last.ckpt
    assert cb.best_model_path == str(copy / "epoch_005.ckpt") and float(cb.best_model_score) == pytest.approx(0.1)
    assert sorted(cb.best_k_models) == [str(copy / "epoch_002.ckpt"), str(copy / "epoch_005.ckpt")]
    assert cb.kth_best_model_path == str(copy / "epoch_002.ckpt") and float(cb.kth_value) == pytest.approx(0.2)
    assert cb.last_model_path == str(copy / "last.ckpt")  # so the next save rewrites it, no last-v1.ckpt

    (copy / "epoch_005.ckpt").unlink()  # a recorded file missing from the copy: dropped, best chosen again
    cb = _restored(copy, copy / "last.ckpt", _state(original))
    assert cb.best_k_models == {str(copy / "epoch_002.ckpt"): torch.tensor(0.2)}
    assert cb.best_model_path == str(copy / "epoch_002.ckpt") and float(cb.best_model_score) == pytest.approx(0.2)

    # a new run started from another run's checkpoint keeps no record of that run's files
    new = tmp_path / "new" / "checkpoints"
    cb = _restored(new, original / "last.ckpt", _state(original))
    assert (cb.best_model_path, cb.best_k_models, cb.last_model_path, cb.best_model_score) == ("", {}, "", None)
    assert cb.kth_best_model_path == "" and float(cb.kth_value) == float("inf")


def test_resume_of_a_copy_does_not_repeat_the_original_folder_from_its_saved_overrides(tmp_path):
    # a run made with paths.output_dir=<its folder> saved that absolute path in .hydra/overrides.yaml
    copy = tmp_path / "copy"
    (copy / ".hydra").mkdir(parents=True)
    (copy / ".hydra" / "overrides.yaml").write_text(
        f"- model=dffnet_small\n- paths.output_dir={tmp_path / 'original'}\n- ckpt_path=null\n")
    argv = argv_for_resume(["train", f"run_dir={copy}"])
    assert "model=dffnet_small" in argv and f"hydra.run.dir='{copy}'" in argv and "ckpt_path=last" in argv
    assert not any("original" in a for a in argv), argv  # the continuation is written into the copy
    # an explicit choice on the command line still wins
    assert "paths.output_dir=elsewhere" in argv_for_resume(["train", f"run_dir={copy}", "paths.output_dir=elsewhere"])


# ------------------------------------------------------------------ a copied run, end to end
def _test_mae(tmp_path: Path, ckpt: Path) -> float:
    """The test MAE of ``ckpt``, scored here independently of the run that wrote it."""
    cfg = compose_cfg(tmp_path / "score", [*SMALL, "logger=none"])
    task, datamodule = build_task(cfg), build_datamodule(cfg)
    load_weights(task, ckpt)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.test(task, datamodule=datamodule, verbose=False)
    return float(trainer.callback_metrics["test/synthetic/mae"])


def test_copied_run_resumes_and_tests_from_its_own_checkpoints_only(tmp_path):
    original, copy = tmp_path / "run", tmp_path / "run_copy"
    first = run_module("dbd_lightning.train", [*SMALL, *QUIET, "logger=csv", "trainer.max_epochs=1",
                                               "hydra.run.dir=run"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    shutil.copytree(original, copy)
    shutil.rmtree(original)  # the original is gone: nothing of it may be read, nor written again
    resumed = run_module("dbd_lightning.train", [f"run_dir={copy}", "ckpt_path=last", "trainer.max_epochs=2"],
                         cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not original.exists()

    folder = copy / "checkpoints"
    names = sorted(p.name for p in folder.iterdir())
    assert names in (["epoch_000.ckpt", "last.ckpt"], ["epoch_001.ckpt", "last.ckpt"]), names  # no last-v1.ckpt
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 1
    (state,) = [v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint")]
    recorded = [state["best_model_path"], state["last_model_path"], state["kth_best_model_path"], *state["best_k_models"]]
    assert state["dirpath"] == str(folder.resolve())
    assert all(Path(p).parent == folder.resolve() for p in recorded), recorded
    best = find_checkpoint(copy, "best")
    assert best.name == names[0] == Path(state["best_model_path"]).name  # train and eval agree on the best
    metrics = json.loads((copy / "metrics.json").read_text())
    assert metrics["test/synthetic/mae"] == pytest.approx(_test_mae(tmp_path, best), abs=1e-6)
