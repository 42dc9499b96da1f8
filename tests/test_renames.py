"""Runs made before the one-folder-per-paper redesign: their saved names are brought up to date when read."""

from __future__ import annotations

import importlib
import importlib.util

import pytest
from hydra.utils import get_class, get_object
from omegaconf import OmegaConf

from dbd_lightning.runs.renames import MOVED_TARGETS, migrate_config, migrate_overrides
from dbd_lightning.runs.resume import config_changes
from dbd_lightning.runs.run import RunCheckpoint

from .helpers import TINY, compose_cfg


def _module_exists(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.parametrize(("old", "new"), MOVED_TARGETS)
def test_every_moved_path_is_gone_and_its_new_home_imports(old, new):
    if old.endswith("."):
        assert not _module_exists(old[:-1])  # a stale row would hide a module that still exists
        importlib.import_module(new[:-1])
    else:
        assert get_object(new) is not None


def test_an_old_run_config_reads_in_todays_names(tmp_path):
    old = {
        "model": {"_target_": "dbd_lightning.tasks.depth.DepthTask", "kind": "dense",
                  "net": {"_target_": "dbd_lightning.models.depthnet.DepthNet", "encoder": "resnet18"},
                  "depth_loss": {"_target_": "dbd_lightning.losses.depth.DepthLoss"}},
        "callbacks": {"distillation": {"_target_": "dbd_lightning.distill.Distillation"}},
        "data": {"B": "dbd_lightning.data.benchmarks", "sets": {"te": {"_target_": "${data.B}.CUHK", "split": "te1"}}},
    }
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(old), tmp_path / ".hydra" / "config.yaml")
    cfg = RunCheckpoint(tmp_path, tmp_path / "none.ckpt").load_config()
    assert cfg.model._target_ == "dbd_lightning.models.ddffnet.depth_task.DepthTask"
    assert get_class(cfg.model.net._target_).__name__ == "DepthNet"
    assert get_class(cfg.model.depth_loss._target_).__name__ == "DepthLoss"
    assert get_class(cfg.callbacks.distillation._target_).__name__ == "Distillation"
    assert "kind" not in cfg.model and "B" not in cfg.data
    assert cfg.data.sets.te._target_ == "dbd_lightning.data.benchmarks.CUHK"  # the interpolation follows the key
    assert migrate_config(OmegaConf.to_container(cfg)) == OmegaConf.to_container(cfg)  # today's names stay


def test_old_overrides_name_todays_experiments_and_keys():
    assert migrate_overrides(["experiment=dd_paper", "experiment=ddffnet_two_stage", "+data.B=pkg", "metrics=dd",
                              "model=dffnet", "~model.kind", "loss=bce_edge"]) == [
        "experiment=ddnet_paper", "experiment=ddffnet_paper", "+data.benchmark_module=pkg", "metrics=ddnet",
        "model=dffnet", "~model.kind", "loss=bce_edge"]


def test_resuming_a_run_saved_with_the_old_names_sees_no_config_change(tmp_path):
    cfg = compose_cfg(tmp_path, ["model=depthnet_small", "logger=none", *TINY])
    saved = OmegaConf.to_yaml(cfg)
    for old, new in MOVED_TARGETS:  # write the run's config as the code before the redesign did
        saved = saved.replace(new, old) if old.endswith(".") else saved
    assert "dbd_lightning.models.depthnet." in saved and "dbd_lightning.tasks.depth." in saved
    (tmp_path / ".hydra").mkdir(exist_ok=True)
    (tmp_path / ".hydra" / "config.yaml").write_text(saved)
    assert [k for k in config_changes(tmp_path, cfg) if k.startswith(("model.", "data.", "loss."))] == []


def test_an_old_karaali_run_with_the_literal_radii_sees_no_config_change(tmp_path):
    cfg = compose_cfg(tmp_path, ["experiment=karaali_bnet", "logger=none"])
    assert cfg.model.radii._target_.endswith("levels.bnet_radii")
    old = OmegaConf.to_container(cfg, resolve=False)
    old["model"]["radii"] = [0.5 + 0.25 * k for k in range(23)]  # what the config held before levels.py
    (tmp_path / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.create(old), tmp_path / ".hydra" / "config.yaml")
    assert [k for k in config_changes(tmp_path, cfg) if k.startswith("model.")] == []
    old["model"]["radii"][3] = 1.3  # radii the user changed are still a change
    OmegaConf.save(OmegaConf.create(old), tmp_path / ".hydra" / "config.yaml")
    assert [k for k in config_changes(tmp_path, cfg) if k.startswith("model.")] == ["model.radii", "model.radii._target_"]
