"""Every model / loss / experiment config composes and runs one fast_dev_run batch."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dbd_lightning.models import registry
from dbd_lightning.train import run
from dbd_lightning.train_checks import check_train_config
from dbd_lightning.utils.config import config_dir, trainable_on
from dbd_lightning.utils.errors import ConfigError

from .helpers import TINY, compose_cfg

CONF = Path(config_dir())


def _model_target(name: str) -> str:
    """``_target_`` of model config ``name``, following its first defaults entry when it has none."""
    node = OmegaConf.load(CONF / "model" / f"{name}.yaml")
    if "_target_" in node:
        return node["_target_"]
    return _model_target(next(d for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"))


# paper names (model=ddffnet, btbnet, ...) are whole recipes, each the same config as an experiment
# (tests/test_user_commands.py); the experiments below run them
PAPER_PRESETS = set(registry.presets())
# models whose class does not train on images with maps: pipelines (predict/eval-only, e.g. model=karaali:
# not a LightningModule) and Karaali's B-NET/E-NET (trains_on = "edge_patches"); tests/test_karaali_*.py run them
NON_DBD_MODELS = {p.stem for p in (CONF / "model").glob("*.yaml") if p.stem not in PAPER_PRESETS
                  and trainable_on(OmegaConf.create({"model": {"_target_": _model_target(p.stem)}})) != "images"}
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if p.stem not in NON_DBD_MODELS | PAPER_PRESETS)
LOSSES = sorted(p.stem for p in (CONF / "loss").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")  # and experiments selecting them
                     if not any(line.strip().endswith(f"/model: {m}")
                                for line in p.read_text().splitlines() for m in NON_DBD_MODELS))
FDR = ["++trainer.fast_dev_run=true", "logger=none", "data=synthetic"]
# BTBNet's paper widths (full-resolution VGG16, ~10 s per 64 px step on CPU) smoke-run with CPU
# widths here; tests/test_btbnet.py runs model=btbnet at paper widths (slow mark)
BTBNET_CPU = ["model.net.widths=[4,8,8,16,16]", "model.net.ffic_channels=[8,8,4,1]"]


def _shrink(name: str) -> list[str]:
    return BTBNET_CPU if name.startswith("btbnet") else []


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_fast_dev_run(tmp_path, model):
    cfg = compose_cfg(tmp_path, [f"model={model}", *FDR, *TINY, *_shrink(model)])
    metrics = run(cfg)
    if cfg.model._target_.endswith("DepthTask"):  # depth-teacher pretraining: depth errors, no DBD metrics
        assert {"test/synthetic/mae", "test/synthetic/rmse"} <= set(metrics)
    else:
        assert {"test/synthetic/mae", "test/synthetic/fbeta", "test/synthetic/iou"} <= set(metrics)
    assert 0 <= metrics["test/synthetic/mae"] <= 1


@pytest.mark.parametrize("model", sorted(NON_DBD_MODELS))
def test_models_not_trained_on_images_are_refused_with_image_data(tmp_path, model):
    cfg = compose_cfg(tmp_path, [f"model={model}", "data=synthetic"])
    with pytest.raises(ConfigError, match="pipeline, not a trainable network|patch classifier"):
        check_train_config(cfg)


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_config_fast_dev_run(tmp_path, loss):
    cfg = compose_cfg(tmp_path, ["model=dffnet_small", f"loss={loss}", *FDR, *TINY])
    assert "train/loss" in run(cfg)


#: experiments whose data is part of the recipe (run on it, tiny, instead of data=synthetic)
OWN_DATA = {"dffnet_lite_synth_selftrain": "photographic", "dffnet_lite_synth_selftrain_adabn": "photographic",
            "dffnet_lite2_synth_selftrain_tent": "photographic", "dffnet_lite2_synth_selftrain_tent_photos": "photographic"}


def _photos(folder: Path) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    return folder


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_config_fast_dev_run(tmp_path, experiment):
    if experiment in OWN_DATA:  # the self-training recipes on a folder of plain photos (no masks anywhere)
        fdr = ["++trainer.fast_dev_run=true", "logger=none", f"data.unlabeled_root={_photos(tmp_path / 'photos')}",
               "data.exclude_cuhk_tr1_holdout=0", "real_report.enabled=false"]
    else:
        fdr = FDR
    cfg = compose_cfg(tmp_path, [f"experiment={experiment}", *fdr, *TINY, *_shrink(experiment)])
    metrics = run(cfg)
    data = OWN_DATA.get(experiment, "synthetic")
    if cfg.model._target_.endswith("DepthTask"):  # the depth teacher's recipe: depth errors, no DBD metrics
        assert {f"test/{data}/mae", f"test/{data}/rmse"} <= set(metrics)
    else:
        assert f"test/{data}/fbeta" in metrics
    assert (tmp_path / "config_resolved.yaml").is_file() and (tmp_path / "metrics.json").is_file()


def test_photos_only_selftraining_trains_on_the_photos_alone(tmp_path):
    """experiment=dffnet_lite2_synth_selftrain_tent_photos: the one training set is the unlabeled folder (the
    synthetic half of its parent recipe is gone), with data.train_length draws."""
    from hydra.utils import instantiate

    photos = _photos(tmp_path / "photos")
    cfg = compose_cfg(tmp_path, ["experiment=dffnet_lite2_synth_selftrain_tent_photos", f"data.unlabeled_root={photos}",
                                 "data.exclude_cuhk_tr1_holdout=0", "data.train_length=7"])
    train = {k: v for k, v in cfg.data.datamodule.train.items() if v is not None}
    assert list(train) == ["unlabeled_photos"]
    folder = instantiate(train["unlabeled_photos"])
    assert len(folder) == 7 and len(folder.files) == 3 and {folder[i]["labeled"] for i in range(7)} == {0}


def test_authors_code_switches_reach_the_objects(tmp_path):
    from dbd_lightning.runs.task_builder import build_task

    cfg = compose_cfg(tmp_path, ["experiment=dffnet_authors_code", *TINY])
    task = build_task(cfg)
    assert task.loss.main_weight == 1.1 and task.loss.edge_loss.reduction == "sum"
    assert cfg.trainer.gradient_clip_val == 0.5 and cfg.trainer.gradient_clip_algorithm == "value"
    assert cfg.trainer.max_epochs == 74 and cfg.model.scheduler.total_iters == 80
    assert cfg.data.datamodule.train_transform.flip == "horizontal"
    paper = compose_cfg(tmp_path, ["experiment=dffnet_paper", *TINY])
    assert paper.trainer.max_epochs == 75 and paper.model.scheduler.total_iters == 75
    assert paper.data.datamodule.train_transform.flip == "vertical"
