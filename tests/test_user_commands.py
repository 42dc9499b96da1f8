"""The design card's commands: ``model=<paper>`` presets, sweeps over them, resume without repeating
overrides, trainer flags that switch default callbacks off, checkpoints that carry their run config."""

from __future__ import annotations

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch.callbacks import ModelSummary, TQDMProgressBar
from omegaconf import OmegaConf

from dbd_lightning.runner import drop_disabled_callbacks
from dbd_lightning.train import prepare_argv, run
from dbd_lightning.utils.config import config_dir
from dbd_lightning.utils.presets import MODEL_PRESETS, expand_model_presets
from dbd_lightning.utils.run_meta import CKPT_KEY
from dbd_lightning.utils.validate import _job_overrides

from .helpers import TINY, compose_cfg


def _compose(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_design_card_command_is_d_dffnet_both_stages_on_cuhk():
    args = expand_model_presets(["model=ddffnet", "data=cuhk_tr1"])
    assert args == ["data=cuhk_tr1", "experiment=ddffnet_paper"]
    cfg = _compose(args)
    assert cfg.pipeline.stage1_experiment == "dffnet_paper"          # stage 1 runs first (pipelines/stages)
    assert cfg.model._target_.endswith("DistillationTask")            # stage 2: the distilled student
    assert cfg.model.net._target_.endswith("DFFNet") and cfg.model.net.encoder == "resnest101e"
    assert cfg.hydra.runtime.choices.data == "cuhk_tr1" and cfg.data.name == "cuhk_tr1"


def test_every_paper_name_composes_to_its_recipe():
    expected_net = {"ddffnet": "DFFNet", "d-dffnet": "DFFNet", "dd": "DDNet", "ddnet": "DDNet", "rdffnet": "RDFFNet",
                    "btbnet": "BTBNet", "karaali_bnet": "BNet", "karaali_enet": "ENet"}
    for name, (experiment, model) in MODEL_PRESETS.items():
        cfg = _compose(expand_model_presets([f"model={name}"]))
        assert cfg.hydra.runtime.choices.experiment == experiment and cfg.hydra.runtime.choices.model == model
        assert cfg.model.net._target_.rsplit(".", 1)[-1] == expected_net[name], name
    # BTBNet's own loss / metrics / batch, the data still chosen on the command line
    cfg = _compose(expand_model_presets(["model=btbnet", "data=synthetic"]))
    assert cfg.data.batch_size == 1 and cfg.metrics.preset == "btbnet" and cfg.data.name == "synthetic"
    # karaali_bnet picks its patch data by itself
    assert _compose(expand_model_presets(["model=karaali_bnet"])).data.name == "patches"
    # plain model configs and explicit experiments are left alone
    assert expand_model_presets(["model=dffnet_small"]) == ["model=dffnet_small"]
    assert expand_model_presets(["experiment=ddffnet_table4", "model=ddffnet"]) == ["experiment=ddffnet_table4",
                                                                                    "model=dffnet"]


def test_multirun_over_paper_models_and_data_composes():
    args = ["-m", *expand_model_presets(["model=ddffnet,btbnet", "data=cuhk_tr1,synthetic"])]
    jobs, multirun = _job_overrides(args)
    assert multirun and len(jobs) == 4
    seen = set()
    for job in jobs:
        cfg = _compose(job)
        seen.add((cfg.model.net._target_.rsplit(".", 1)[-1], cfg.data.name))
    assert seen == {("DFFNet", "cuhk_tr1"), ("DFFNet", "synthetic"), ("BTBNet", "cuhk_tr1"), ("BTBNet", "synthetic")}


def test_resume_takes_the_runs_own_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "r"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    saved = ["model=pdnet_small", *TINY, "logger=none"]
    (run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(
        OmegaConf.masked_copy(_compose(saved), [k for k in _compose(saved) if k != "hydra"])))
    (run_dir / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(saved)))
    torch.save({"state_dict": {}}, run_dir / "checkpoints" / "last.ckpt")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    argv = prepare_argv(["train", "run_dir=r", "trainer.max_epochs=5"])  # composes and checks: no error
    assert argv[1:len(saved) + 1] == saved and "trainer.max_epochs=5" in argv and "ckpt_path=last" in argv
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


def test_trainer_flags_drop_the_default_callbacks():
    cbs = [TQDMProgressBar(), ModelSummary()]
    assert drop_disabled_callbacks(cbs, OmegaConf.create({"enable_progress_bar": False})) == [cbs[1]]
    assert drop_disabled_callbacks(cbs, OmegaConf.create({"enable_model_summary": False})) == [cbs[0]]
    assert drop_disabled_callbacks(cbs, OmegaConf.create({})) == cbs


def test_progress_bar_off_trains_and_checkpoints_carry_the_run_config(tmp_path):
    cfg = compose_cfg(tmp_path, ["model=dffnet_small", *TINY, "logger=none", "trainer.max_epochs=1",
                                 "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", "test=false"])
    assert "progress_bar" in cfg.callbacks  # the default callback is still configured
    run(cfg)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    meta = state[CKPT_KEY]
    assert meta["image_size"] == [64, 64]
    assert meta["model"]["net"]["_target_"].endswith("DFFNet") and meta["model"]["net"]["encoder"] == "resnet18"
