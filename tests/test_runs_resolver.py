"""The one checkpoint resolver: "best" is the checkpoint ModelCheckpoint recorded, never the newest file,
for the pipelines, eval / predict / export (``resolve_checkpoint``) alike; ``last`` for resume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from dbd_lightning.pipelines.stages import run_pipeline
from dbd_lightning.runs.resolver import find_checkpoint, recorded_best, resolve_checkpoint
from dbd_lightning.runs.resume import resolve_ckpt_path
from dbd_lightning.runs.run import CheckpointSpecError
from dbd_lightning.utils.errors import ConfigError

from .helpers import compose_cfg

MC_KEY = "ModelCheckpoint{'monitor': 'val/synthetic/mae', 'mode': 'min', 'every_n_train_steps': 0}"


def write_run(run_dir: Path, best: str | None = "epoch_000.ckpt", epochs=("epoch_000.ckpt", "epoch_001.ckpt"),
              last: bool = True) -> Path:
    """A run folder whose best checkpoint (recorded in last.ckpt) is the OLDER of two epoch files."""
    folder = run_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "config.yaml").write_text("model: {}\n")
    for i, name in enumerate(epochs):
        torch.save({"state_dict": {}, "epoch": i}, folder / name)
        os.utime(folder / name, (1_000_000 + 100 * i, 1_000_000 + 100 * i))  # later epochs are newer files
    if last:
        callbacks = {MC_KEY: {"best_model_path": f"/somewhere/else/checkpoints/{best}"}} if best else {}
        torch.save({"state_dict": {}, "callbacks": callbacks}, folder / "last.ckpt")
    return folder


def test_best_is_the_recorded_best_not_the_newest_file(tmp_path):
    folder = write_run(tmp_path)
    newest = max(folder.glob("epoch_*.ckpt"), key=lambda p: p.stat().st_mtime)
    assert newest.name == "epoch_001.ckpt"  # the file a newest-by-mtime rule would take
    assert recorded_best(folder / "last.ckpt") == "epoch_000.ckpt"
    assert find_checkpoint(tmp_path) == folder / "epoch_000.ckpt"
    assert find_checkpoint(tmp_path, "last") == folder / "last.ckpt"
    assert find_checkpoint(tmp_path, "epoch_001.ckpt") == folder / "epoch_001.ckpt"
    # eval, predict and export resolve ckpt=<run dir> through resolve_checkpoint: the same file
    assert resolve_checkpoint(tmp_path).ckpt == folder / "epoch_000.ckpt"
    assert resolve_checkpoint(tmp_path, "last").ckpt == folder / "last.ckpt"


def test_a_missing_which_names_the_key_and_what_the_run_holds(tmp_path):
    """``which=<name>`` that is no checkpoint of the run: the message names ``which=`` and lists the files."""
    write_run(tmp_path)
    with pytest.raises(CheckpointSpecError) as info:
        find_checkpoint(tmp_path, "no_such_option")
    text = str(info.value)
    assert "which=no_such_option" in text and "best, last or a file name" in text, text
    assert "epoch_000.ckpt" in text and "last.ckpt" in text, text


def test_best_fallbacks_are_the_documented_ones(tmp_path):
    # the recorded file is gone and one epoch checkpoint is left: that one (save_top_k=1 keeps only the best)
    folder = write_run(tmp_path / "a", best="epoch_007.ckpt", epochs=("epoch_003.ckpt",))
    assert find_checkpoint(tmp_path / "a") == folder / "epoch_003.ckpt"
    # no last.ckpt, one epoch checkpoint
    folder = write_run(tmp_path / "b", epochs=("epoch_002.ckpt",), last=False)
    assert find_checkpoint(tmp_path / "b") == folder / "epoch_002.ckpt"
    # several and nothing recorded: an error naming them, never a guess
    write_run(tmp_path / "c", best=None)
    with pytest.raises(CheckpointSpecError, match=r"holds 2 checkpoints.*epoch_000.ckpt.*which="):
        find_checkpoint(tmp_path / "c")
    with pytest.raises(CheckpointSpecError, match="holds 2 checkpoints"):
        find_checkpoint(tmp_path / "c", required=False)
    # no epoch checkpoint: last.ckpt, the only weights the run saved
    folder = write_run(tmp_path / "d", best=None, epochs=())
    assert find_checkpoint(tmp_path / "d") == folder / "last.ckpt"
    # nothing saved (fast_dev_run): an error, or None where the caller allows it (pipelines)
    (tmp_path / "e").mkdir()
    with pytest.raises(CheckpointSpecError, match="no best checkpoint"):
        find_checkpoint(tmp_path / "e")
    assert find_checkpoint(tmp_path / "e", required=False) is None
    assert find_checkpoint(tmp_path / "e", "last", required=False) is None


def test_resume_last_is_last_ckpt_through_the_resolver(tmp_path):
    folder = write_run(tmp_path / "run")
    cfg = OmegaConf.create({"ckpt_path": "last", "run_dir": str(tmp_path / "run")})
    assert resolve_ckpt_path(cfg, tmp_path / "elsewhere") == str(folder / "last.ckpt")
    fresh = OmegaConf.create({"ckpt_path": "last", "run_dir": None})
    assert resolve_ckpt_path(fresh, tmp_path / "new") is None  # auto-resume: nothing yet, start fresh


def test_pipeline_passes_on_the_recorded_best_not_the_newest(tmp_path):
    cfg = compose_cfg(tmp_path, ["experiment=ddffnet_paper", "model=dffnet_small", "data=synthetic"])
    seen = []

    def fake_run(stage_cfg):  # stage 1 "trains": writes two epoch files, the older one recorded as best
        seen.append(stage_cfg)
        if len(seen) == 1:
            write_run(Path(stage_cfg.paths.output_dir))
        return {"test/x": float(len(seen))}

    metrics = run_pipeline(cfg, fake_run)
    best = tmp_path / "stage1" / "checkpoints" / "epoch_000.ckpt"
    assert seen[1].teacher.defocus.ckpt == str(best)
    assert (tmp_path / "stage1_checkpoint.txt").read_text().strip() == str(best)
    assert metrics == {"stage1/test/x": 1.0, "test/x": 2.0}


def test_a_composed_stage_receives_what_the_previous_one_passes_on(tmp_path):
    """Three stages: a composed stage gets the checkpoint as an override; a config error is refused first."""
    cfg = compose_cfg(tmp_path, ["experiment=ddffnet_paper", "model=dffnet_small", "data=synthetic"])
    first = {"name": "a", "experiment": "dffnet_paper", "groups": {"model": None}, "pass_on": {"extra.init": "best"}}
    second = {"name": "b", "experiment": "dffnet_paper", "groups": {"model": "dffnet_small"},
              "overrides": ["seed=7"], "pass_on": {"teacher.defocus.ckpt": "last"}}
    cfg.pipeline.stages = [first, second, {"name": "c", "experiment": None}]
    seen = []

    def fake_run(stage_cfg):
        seen.append(stage_cfg)
        if len(seen) < 3:
            write_run(Path(stage_cfg.paths.output_dir))
        return {}

    run_pipeline(cfg, fake_run)
    assert seen[1].extra.init == str(tmp_path / "a" / "checkpoints" / "epoch_000.ckpt") and seen[1].seed == 7
    assert seen[2].teacher.defocus.ckpt == str(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert [Path(c.paths.output_dir).name for c in seen] == ["a", "b", "c"]
    cfg.pipeline.stages = [first]
    with pytest.raises(ConfigError, match="has pass_on but no stage follows it"):
        run_pipeline(cfg, fake_run)
