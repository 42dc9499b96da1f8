"""The one-line Python API (``dbd_lightning.load_predictor``): the CLI's maps, clear errors, a cheap import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dbd_lightning
from dbd_lightning.api import FocusPredictor, as_rgb
from dbd_lightning.runs.run import CheckpointSpecError

from .helpers import run_module

PHOTO = (Path(dbd_lightning.__file__).resolve().parent / "resources" / "real_mini" / "cuhk_te_sample" / "image"
         / "1.png")  # a real photograph shipped in the package (offline, no ../shared)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """Cached ONNX graphs go to the test's folder, not the user's ~/.cache."""
    monkeypatch.setenv("DBD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_import_is_cheap_and_the_api_is_a_lazy_attribute():
    code = ("import sys, dbd_lightning; heavy = [m for m in ('torch', 'lightning', 'hydra', 'numpy') if m in sys.modules]; "
            "print(heavy); from dbd_lightning import load_predictor; print(load_predictor.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["[]", "dbd_lightning.api"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dbd_lightning.nope  # noqa: B018
    assert "load_predictor" in dir(dbd_lightning)


def cli_and_api_maps(tmp_path: Path, extra: list[str], **options) -> tuple[np.ndarray, np.ndarray, FocusPredictor]:
    """``predict ckpt=zoo:... input=<photo>``'s focus PNG and the API's map of the same photo."""
    out = tmp_path / "pred"
    done = run_module("dbd_lightning.predict", ["ckpt=zoo:dffnet_lite0_synth", f"input={PHOTO}", f"output={out}",
                                                f"hydra.run.dir={tmp_path / 'h'}", *extra], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    png = np.asarray(Image.open(out / "focus" / "1.png"), dtype=np.float64)
    predict = dbd_lightning.load_predictor("zoo:dffnet_lite0_synth", **options)
    return png, predict(str(PHOTO)), predict


def assert_same_map(png: np.ndarray, focus: np.ndarray) -> None:
    """predict writes focus/<name>.png = round(255 * map): the API's map must round to the same PNG."""
    assert focus.dtype == np.float32 and focus.shape == png.shape
    assert 0.0 <= focus.min() and focus.max() <= 1.0
    assert np.abs(focus.astype(np.float64) * 255.0 - png).max() <= 0.5 + 1e-3
    assert focus.std() > 0.05  # a real map of the photo, not a constant


def test_api_map_equals_the_cli_map_of_the_same_photo(tmp_path, cache):
    png, focus, predict = cli_and_api_maps(tmp_path, ["backend=torch"], backend="torch")
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    assert focus.shape == rgb.shape[:2]
    assert_same_map(png, focus)
    # the same photo as an array and as a PIL image: the same map
    np.testing.assert_array_equal(predict(rgb), focus)
    np.testing.assert_array_equal(predict(Image.open(PHOTO)), focus)


@pytest.mark.slow  # exports the network to ONNX (tens of seconds on 2 cores)
def test_default_backend_is_the_onnxruntime_fast_path_and_matches_the_cli(tmp_path, cache):
    png, focus, predict = cli_and_api_maps(tmp_path, [])
    assert predict.predictor.backend.name == "onnxruntime"  # backend=auto on a plain install
    assert_same_map(png, focus)


def test_a_released_safetensors_file_anywhere_loads_like_its_zoo_name(tmp_path):
    from dbd_lightning.zoo import WEIGHTS_DIR

    copy = tmp_path / "models" / "mine.safetensors"
    copy.parent.mkdir()
    shutil.copy(WEIGHTS_DIR / "dffnet_lite0_synth.safetensors", copy)
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    from_zoo = dbd_lightning.load_predictor("zoo:dffnet_lite0_synth", backend="torch", device="cpu")
    from_file = dbd_lightning.load_predictor(copy, backend="torch", device="cpu")
    assert from_file.name == "mine.safetensors" and from_zoo.name == "zoo:dffnet_lite0_synth"
    np.testing.assert_array_equal(from_file(rgb), from_zoo(rgb))
    (tmp_path / "plain.safetensors").write_bytes(b"\x00" * 32)  # not a released model: refused in one line
    with pytest.raises(CheckpointSpecError, match="plain.safetensors.*unreadable"):
        dbd_lightning.load_predictor(tmp_path / "plain.safetensors")


def test_bad_references_name_the_thing_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="no released model 'nope'; released models: dffnet_lite0_cuhk"):
        dbd_lightning.load_predictor("zoo:nope")
    with pytest.raises(FileNotFoundError, match=r"not found: .*missing_run \(ckpt takes a train run folder"):
        dbd_lightning.load_predictor(tmp_path / "missing_run")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['tiles'\]; the options are"):
        dbd_lightning.load_predictor("zoo:dffnet_lite0_synth", tiles=False)


class _Constant:
    """A predictor returning a constant map: the input checks run before any network."""

    def predict_image(self, rgb):
        return {"focus": np.full(rgb.shape[:2], 0.25, np.float32)}


def test_bad_images_name_the_problem_and_the_fix(tmp_path):
    predict = FocusPredictor(_Constant(), "constant")
    assert predict(np.zeros((5, 7, 3), np.uint8)).shape == (5, 7)
    with pytest.raises(ValueError, match=r"uint8 RGB of shape \(H, W, 3\), got float64 \(5, 7, 3\).*\* 255"):
        predict(np.zeros((5, 7, 3)))
    with pytest.raises(ValueError, match=r"got uint8 \(5, 7\).*np.repeat"):
        predict(np.zeros((5, 7), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"image .*nope.png does not exist"):
        predict(tmp_path / "nope.png")
    with pytest.raises(FileNotFoundError, match="is a folder.*predict input=<folder>"):
        predict(tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"cannot decode image file .*bad.jpg"):
        predict(tmp_path / "bad.jpg")
    with pytest.raises(TypeError, match="got list"):
        predict([[0, 0, 0]])
    grey = Image.fromarray(np.full((4, 6), 9, np.uint8))  # a PIL image in any mode: converted to RGB
    np.testing.assert_array_equal(as_rgb(grey), np.full((4, 6, 3), 9, np.uint8))
