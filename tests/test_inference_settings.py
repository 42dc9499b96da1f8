"""One inference settings object (``inference/settings.py``) and one ``conf/inference/`` group: the YAML states the
dataclass's defaults, every bad value is refused up front naming its full key, both overlaps are fractions of the
tile side and the default tiles stay those of the old pixel spelling."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from dbd_lightning.inference.image_predictor import ImagePredictor
from dbd_lightning.inference.settings import (
    InferenceSettings,
    InferSettings,
    TileSettings,
    as_settings,
    check_inference_config,
    settings_per_mode,
)
from dbd_lightning.inference.tiling import blend_tiles
from dbd_lightning.utils.config import config_dir
from dbd_lightning.utils.errors import ConfigError

from .helpers import compose_cfg

KEYS = ("image_size", "infer", "tile")


def _settings_part(cfg) -> dict:
    return OmegaConf.to_container(OmegaConf.create({k: cfg[k] for k in KEYS}))


def test_the_yaml_group_states_the_dataclass_defaults(tmp_path):
    default = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "inference" / "default.yaml"))
    assert default == InferenceSettings().as_mapping()
    predict = compose_cfg(tmp_path / "p", ["input=x", "output=y"], config_name="predict")
    assert _settings_part(predict) == InferenceSettings().as_mapping()
    # eval composes inference=papers: the same values but never tiled
    evaluate = compose_cfg(tmp_path / "e", [], config_name="eval")
    assert _settings_part(evaluate) == InferenceSettings.papers_protocol().as_mapping()
    assert InferenceSettings.papers_protocol().tile.mode is False
    assert _settings_part(compose_cfg(tmp_path / "d", ["inference=default"], config_name="eval")) == \
        InferenceSettings().as_mapping()
    # and neither command file restates them
    for name in ("predict", "eval"):
        raw = OmegaConf.load(Path(config_dir()) / f"{name}.yaml")
        assert not set(KEYS) & set(raw), name


def test_the_old_command_line_spellings_still_work(tmp_path):
    cfg = compose_cfg(tmp_path, ["input=x", "output=y", "infer.mode=scale", "infer.scale=0.5", "infer.flip=true",
                                 "tile.mode=false", "tile.batch=2", "image_size=[64,96]"], config_name="predict")
    s = InferenceSettings.from_mapping(cfg)
    assert s == InferenceSettings(image_size=(64, 96), infer=InferSettings(mode="scale", scale=0.5, flip=True),
                                  tile=TileSettings(mode=False, batch=2))
    cfg = compose_cfg(tmp_path, ["infer.mode=[resize,tile]", "tile.mode=auto"], config_name="eval")
    assert [(x.infer.mode, x.tile.mode, x.label) for x in settings_per_mode(cfg)] == [
        ("resize", "auto", "resize"), ("tile", "auto", "tile 1")]


@pytest.mark.parametrize("mapping,message", [
    ({"tile": {"batch": "abc"}}, r"tile.batch must be a whole number >= 1 .*got 'abc'"),
    ({"tile": {"batch": -7}}, r"tile.batch must be a whole number >= 1 .*got -7"),
    ({"tile": {"batch": 2.5}}, r"tile.batch must be a whole number"),
    ({"tile": {"size": 0}}, r"tile.size must be a whole number >= 1"),
    ({"tile": {"above": -7}}, r"tile.above must be a whole number >= 0"),
    ({"tile": {"mode": "maybe"}}, r"tile.mode='maybe' is not a tiling mode.*use one of auto, true, false"),
    ({"tile": {"mode": 1}}, r"tile.mode=1 is not a tiling mode"),
    ({"tile": {"mode": "false"}}, r"tile.mode='false' is not a tiling mode"),
    ({"tile": {"window": "box"}}, r"tile.window='box' is not a blending window; use one of hann, linear"),
    ({"tile": {"overlap": -7}}, r"tile.overlap must be a fraction of the tile side in \[0, 0.5\).*got -7"),
    ({"tile": {"overlap": "abc"}}, r"tile.overlap must be a number"),
    ({"tile": {"sizee": 3}}, r"tile.sizee is not a setting; the tile.\* keys are mode, above, size"),
    ({"infer": {"mode": "tiles"}}, r"infer.mode='tiles' is not a mode; use one of resize, scale, tile"),
    ({"infer": {"mode": ["resize", "tile"]}}, r"infer.mode=.*one mode here \(only eval takes a list"),
    ({"infer": {"scale": "abc"}}, r"infer.scale must be a number"),
    ({"infer": {"scale": -7}}, r"infer.scale must be > 0"),
    ({"infer": {"scale": float("inf")}}, r"infer.scale must be a number"),
    ({"infer": {"fusion_scales": [1.0, float("nan")]}}, r"infer.fusion_scales must be a list of positive numbers"),
    ({"infer": {"overlap": 0.5}}, r"infer.overlap must be a fraction of the tile side in \[0, 0.5\)"),
    ({"infer": {"flip": "maybe"}}, r"infer.flip must be true or false, got 'maybe'"),
    ({"infer": {"fusion_scales": "abc"}}, r"infer.fusion_scales must be a list of positive numbers"),
    ({"infer": {"fusion_scales": [1.0, 0]}}, r"infer.fusion_scales must be a list of positive numbers"),
    ({"image_size": "abc"}, r"image_size must be null .*\[height,width\].*got 'abc'"),
    ({"image_size": [320, 0]}, r"image_size must be null"),
    ({"image_size": [1, 2, 3]}, r"image_size must be null"),
    ({"tile": 3}, r"tile must be a block of settings"),
])
def test_a_bad_value_names_its_full_key(mapping, message):
    with pytest.raises(ConfigError, match=message):
        InferenceSettings.from_mapping(OmegaConf.create(mapping))
    assert issubclass(ConfigError, ValueError)  # the Python API's documented error


def test_the_overlap_is_one_unit_and_a_pixel_value_says_its_fraction():
    with pytest.raises(ConfigError, match=r"no longer given in pixels: 128 px of tile.size=640 is tile.overlap=0.2"):
        InferenceSettings.from_mapping({"tile": {"overlap": 128}})
    with pytest.raises(ConfigError, match=r"64 px of tile.size=256 is tile.overlap=0.25"):
        InferenceSettings.from_mapping({"tile": {"size": 256, "overlap": 64}})
    # the default tiles are the old ones: 640 px squares overlapping by 128 px; the tile mode's 0.25 of its side
    assert ImagePredictor().tile_geometry() == ((640, 640), 128)
    assert ImagePredictor({"tile": {"size": 256, "overlap": 0.25}}).tile_geometry() == ((256, 256), 64)
    tile_mode = ImagePredictor({"image_size": [320, 256], "infer": {"mode": "tile", "scale": 0.5}})
    assert tile_mode.tile_geometry() == ((640, 512), 128)  # 0.25 of the shorter side


class MeanRed(ImagePredictor):
    """Each crop's map: its mean red value / 255 (a constant per crop: every tile shows in the blend)."""

    def _probabilities(self, crops, input_size=None):
        return [np.full(c.shape[:2], c[..., 0].mean() / 255.0, np.float32) for c in crops]


def test_default_tiling_of_a_large_image_is_the_old_pixel_geometry():
    rgb = np.random.default_rng(0).integers(0, 256, (1300, 1700, 3), dtype=np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 1700, dtype=np.uint8)[None]
    got = MeanRed({"image_size": [320, 320]}).predict_image(rgb)["focus"]

    def by_hand(boxes):
        return [np.full((th, tw), rgb[y:y + th, x:x + tw, 0].mean() / 255.0, np.float32) for y, x, th, tw in boxes]

    np.testing.assert_array_equal(got, blend_tiles((1300, 1700), (640, 640), 128, by_hand, batch=4, window="hann"))
    whole = MeanRed(InferenceSettings.papers_protocol((320, 320))).predict_image(rgb)["focus"]
    assert np.ptp(whole) == 0 and np.ptp(got) > 0.3  # the papers' protocol: one crop, no tiles


def test_python_callers_override_through_the_object_or_a_mapping():
    s = InferenceSettings()
    whole = s.updated({"tile": {"mode": False}, "image_size": [96, 96]})
    assert whole == InferenceSettings.papers_protocol((96, 96)) and s.tile.mode == "auto"  # frozen: s unchanged
    assert dataclasses.replace(s, image_size=[64, 32]).image_size == (64, 32)  # normalised
    with pytest.raises(ConfigError, match="image_size must be null"):
        dataclasses.replace(s, image_size="abc")  # replace checks as the constructor does
    with pytest.raises(ConfigError, match="tile.batch must be a whole number"):
        TileSettings(batch=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.image_size = (1, 1)
    assert as_settings({"infer": {"mode": "scale"}}).infer.mode == "scale"
    with pytest.raises(ConfigError, match=r"unknown inference setting\(s\) \['tiles'\]"):
        as_settings({"tiles": {"mode": False}})
    with pytest.raises(TypeError, match="settings must be an InferenceSettings or a mapping"):
        ImagePredictor("resize")


def test_predict_and_eval_refuse_a_bad_value_before_anything_runs(tmp_path, monkeypatch, capsys):
    """Up front (``precompose``): exit 2, ``error: ...`` naming the key, no traceback, no folder; the checkpoint is
    never looked at (it does not exist)."""
    from hydra.core.global_hydra import GlobalHydra

    from dbd_lightning import eval as eval_cli
    from dbd_lightning import predict as predict_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBD_LOG_DIR", str(tmp_path / "outputs"))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    cases = [(predict_cli, ["ckpt=runs/none", "input=x.png", "output=o", "tile.overlap=128"],
              "error: tile.overlap must be a fraction"),
             (predict_cli, ["ckpt=runs/none", "input=x.png", "output=o", "tile.batch=abc"], "error: tile.batch"),
             (eval_cli, ["ckpt=runs/none", "infer.mode=[resize,tiles]"], "error: infer.mode='tiles'"),
             (eval_cli, ["ckpt=runs/none", "image_size=abc"], "error: image_size must be")]
    for module, args, message in cases:
        GlobalHydra.instance().clear()
        monkeypatch.setattr(sys, "argv", [module.__name__, *args])
        with pytest.raises(SystemExit) as exc:
            module.main()
        err = capsys.readouterr().err
        assert exc.value.code == 2 and message in err and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def test_check_inference_config_covers_every_eval_mode_and_int8():
    check_inference_config(OmegaConf.create({"infer": {"mode": ["resize", "scale", "tile"]}}))
    with pytest.raises(ConfigError, match=r"int8.percentile"):
        check_inference_config(OmegaConf.create({"int8": {"percentile": "abc"}}))
