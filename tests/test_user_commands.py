"""The design card's commands: ``model=<paper>`` options (the papers' recipes), sweeps over them, resume without repeating
overrides, trainer flags that switch default callbacks off, checkpoints that carry their run config."""

from __future__ import annotations

import sys

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch.callbacks import ModelSummary, TQDMProgressBar
from omegaconf import OmegaConf

from dbd_lightning.models import registry
from dbd_lightning.runner import drop_disabled_callbacks
from dbd_lightning.runs.renames import migrate_overrides
from dbd_lightning.runs.run_meta import CKPT_KEY
from dbd_lightning.train import prepare_argv, run
from dbd_lightning.utils.config import config_dir
from dbd_lightning.utils.validate import _job_overrides

from .helpers import TINY, compose_cfg


def _compose(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def _plain(cfg):
    """The composed config without Hydra's node, as a plain container (key order ignored by ==)."""
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))


def test_design_card_command_is_d_dffnet_both_stages_on_cuhk():
    cfg = _compose(["model=ddffnet", "data=cuhk_tr1"])
    assert cfg.hydra.runtime.choices.model == "ddffnet"                # an option of the model group, no rewrite
    assert cfg.pipeline.stage1_experiment == "dffnet_paper"          # stage 1 runs first (pipelines/stages)
    assert cfg.pipeline.stage1_model == "dffnet"                     # ... on the network, not on this option
    assert cfg.model._target_.endswith("DistillationTask")            # stage 2: the distilled student
    assert cfg.model.net._target_.endswith("DFFNet") and cfg.model.net.encoder == "resnest101e"
    assert cfg.hydra.runtime.choices.data == "cuhk_tr1" and cfg.data.name == "cuhk_tr1"
    # the same config as the paper's experiment, in either order on the command line
    assert _plain(_compose(["data=cuhk_tr1", "model=ddffnet"])) == _plain(cfg)
    recipe = _plain(_compose(["experiment=ddffnet_paper", "data=cuhk_tr1"]))
    recipe["pipeline"]["stage1_model"] = "dffnet"
    assert _plain(cfg) == recipe


def test_every_paper_name_composes_to_its_recipe():
    expected_net = {"ddffnet": "DFFNet", "d-dffnet": "DFFNet", "dd": "DDNet", "ddnet": "DDNet", "rdffnet": "RDFFNet",
                    "btbnet": "BTBNet", "karaali_bnet": "BNet", "karaali_enet": "ENet"}
    assert set(registry.presets()) == set(expected_net)
    for name, experiment in registry.presets().items():
        cfg = _plain(_compose([f"model={name}"]))
        assert cfg["model"]["net"]["_target_"].rsplit(".", 1)[-1] == expected_net[name], name
        recipe = _plain(_compose([f"experiment={experiment}"]))
        if "pipeline" in recipe and recipe["pipeline"].get("stage1_model", "absent") is None:
            recipe["pipeline"]["stage1_model"] = cfg["pipeline"]["stage1_model"]
        assert cfg == recipe, name
    # BTBNet's own loss / metrics / batch, the data still chosen on the command line (in any order)
    for args in (["model=btbnet", "data=synthetic"], ["data=synthetic", "model=btbnet"]):
        cfg = _compose(args)
        assert cfg.data.batch_size == 1 and cfg.metrics.preset == "btbnet" and cfg.data.name == "synthetic"
        assert cfg.hydra.runtime.choices.loss == "bce"
    assert _compose(["model=btbnet", "loss=bce_edge"]).hydra.runtime.choices.loss == "bce_edge"  # explicit wins
    # karaali_bnet picks its patch data by itself
    assert _compose(["model=karaali_bnet"]).data.name == "patches"


def test_multirun_over_paper_models_and_data_composes():
    args = ["-m", "model=ddffnet,ddnet,dffnet,btbnet", "data=cuhk_tr1,synthetic"]
    jobs, multirun = _job_overrides(args)
    assert multirun and len(jobs) == 8
    seen = set()
    for job in jobs:
        cfg = _compose(job)
        seen.add((cfg.hydra.runtime.choices.model, cfg.model.net._target_.rsplit(".", 1)[-1], cfg.data.name,
                  cfg.task_name))
    assert seen == {(m, net, d, task) for m, net, task in [("ddffnet", "DFFNet", "ddffnet_paper"),
                                                           ("ddnet", "DDNet", "ddnet_paper"),
                                                           ("dffnet", "DFFNet", "train"),
                                                           ("btbnet", "BTBNet", "btbnet")]
                    for d in ("cuhk_tr1", "synthetic")}


def test_paper_option_prints_its_job_config_with_hydra_flags(tmp_path, monkeypatch, capsys):
    """``--cfg job`` is Hydra's own flag: with paper names as model options it needs no rewrite (it used to
    fail with 'unrecognized arguments: experiment=ddffnet_paper')."""
    from dbd_lightning import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train", "model=ddffnet", "data=synthetic", "--cfg", "job"])
    GlobalHydra.instance().clear()
    train.main()
    job = OmegaConf.create(capsys.readouterr().out)
    assert job.task_name == "ddffnet_paper" and job.pipeline.stage1_model == "dffnet" and job.data.name == "synthetic"
    assert not any(tmp_path.iterdir())  # printed, nothing run or written


def test_old_preset_rewrite_runs_compose_as_before():
    """Runs made when ``model=<paper>`` was a command-line rewrite saved ``experiment=<recipe> model=<paper>``
    (``model=ddnet`` was then the network); read back (runs/renames.py) they compose the recipe once."""
    for name, experiment in registry.presets().items():
        saved = [f"experiment={experiment}", f"model={name}", "data=synthetic"]
        assert migrate_overrides(saved) == [f"experiment={experiment}", "data=synthetic"]
        _compose(migrate_overrides(saved))
    for kept in (["experiment=ddffnet_table4", "model=dffnet"], ["model=btbnet_small"], ["model=ddnet"]):
        assert migrate_overrides(kept) == kept


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
