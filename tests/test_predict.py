"""predict CLI and predictors: native-size maps, tiling, overlays, npy, bad inputs, model=<name> pipelines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from dbd_lightning.data.io import read_rgb
from dbd_lightning.inference.predictor import CheckpointPredictor, Predictor, build_predictor
from dbd_lightning.inference.tiling import linear_ramp, tile_starts
from dbd_lightning.predict import PredictInputError, collect_inputs, predict
from dbd_lightning.runs.resolver import resolve_checkpoint
from dbd_lightning.runs.run import CheckpointSpecError

from .helpers import compose_cfg, run_module
from .run_fixtures import CUHK_SAMPLE, make_run, write_image


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs"), seed=0)


def _cfg(tmp_path, overrides):
    return compose_cfg(tmp_path / "hydra", overrides, config_name="predict")


class PixelNet(nn.Module):
    """Per-pixel network (1x1 conv): its output at a pixel depends on that pixel only, so tiling is exact."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([0.7, -0.4, 0.2]).view(1, 3, 1, 1))
            self.conv.bias.fill_(0.1)

    def forward(self, x):
        return {"logits": self.conv(x)}


class FakeBlurPipeline:
    """A model=<name> style pipeline: focus from brightness, plus a 'blur_radius' map."""

    def __init__(self, scale: float = 2.0):
        self.scale = scale

    def predict_image(self, rgb):
        g = rgb.mean(axis=2).astype(np.float32) / 255.0
        return {"focus": g, "blur_radius": (1.0 - g) * self.scale}


# ------------------------------------------------------------------ tiling maths
@pytest.mark.parametrize("length,tile,overlap", [(1600, 640, 128), (1024, 640, 128), (700, 640, 64), (641, 640, 0)])
def test_tiles_cover_the_image_with_the_requested_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + tile] = True
    assert covered.all()
    assert all(a + tile - b >= overlap for a, b in zip(starts, starts[1:], strict=False))


def test_single_tile_when_the_image_is_smaller_and_bad_overlap_raises():
    assert tile_starts(300, 640, 128) == [0]
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(2000, 640, 640)
    # the legacy (window=linear) ramps start at 1 / (overlap + 1), never 0: a border under one tile keeps it
    assert linear_ramp(10, 3).tolist() == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 1, 0.75, 0.5, 0.25])


def test_tiled_prediction_equals_whole_image_for_a_per_pixel_net():
    rgb = np.random.default_rng(0).integers(0, 256, (300, 520, 3), dtype=np.uint8)
    whole = CheckpointPredictor(PixelNet(), {"tile": {"mode": False}}, size_multiple=1, device="cpu")
    tiled = CheckpointPredictor(PixelNet(), {"tile": {"mode": True, "size": 128, "overlap": 0.25, "batch": 3}},
                                size_multiple=1, device="cpu")
    a = whole.predict_image(rgb)["focus"]
    b = tiled.predict_image(rgb)["focus"]
    assert a.shape == b.shape == (300, 520) and a.dtype == np.float32
    np.testing.assert_allclose(b, a, atol=1e-6)
    assert tiled.uses_tiles(300, 520) and not whole.uses_tiles(3000, 3000)
    auto = CheckpointPredictor(PixelNet(), {"tile": {"mode": "auto", "above": 500}}, device="cpu")
    assert auto.uses_tiles(300, 520) and not auto.uses_tiles(300, 480)


def test_checkpoint_predictor_matches_the_task_test_protocol(run_dir):
    """Whole-image mode = resize to the input size, sigmoid, bilinear back: the numbers DetectionTask scores."""
    from dbd_lightning.data.transforms import build_eval_transform
    from dbd_lightning.runs.task_builder import build_task
    from dbd_lightning.tasks.detection import DetectionTask
    from dbd_lightning.utils.checkpoint import load_weights

    run = resolve_checkpoint(run_dir)
    pred = CheckpointPredictor.from_run(run, device="cpu")
    assert isinstance(pred, Predictor) and pred.image_size == (64, 64)
    rgb = read_rgb(next((CUHK_SAMPLE / "image").iterdir()))
    focus = pred.predict_image(rgb)["focus"]
    assert focus.shape == rgb.shape[:2] and 0 <= focus.min() and focus.max() <= 1
    task = build_task(run.load_config())
    load_weights(task, run.ckpt)
    x = build_eval_transform((64, 64))(image=rgb)["image"][None].float()
    with torch.no_grad():
        ref = DetectionTask.probabilities_at_original_size(task.eval().net(x)["logits"], [rgb.shape[:2]])[0]
    np.testing.assert_allclose(focus, ref[0].numpy(), atol=1e-5)


# ------------------------------------------------------------------ predict command
def test_predict_folder_writes_native_size_maps_and_skips_corrupt_files(tmp_path, run_dir):
    src = tmp_path / "in"
    for p in sorted((CUHK_SAMPLE / "image").iterdir())[:2]:
        (src / p.name).parent.mkdir(parents=True, exist_ok=True)
        (src / p.name).write_bytes(p.read_bytes())
    (src / "broken.jpg").write_bytes(b"not a jpeg at all")
    (src / "notes.txt").write_text("ignored: not an image suffix")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, [f"ckpt={run_dir}", f"input={src}", f"output={out}", "save_npy=true", "device=cpu"])
    report = predict(cfg)

    assert sorted(report["written"]) == ["1", "2"]
    assert [f["file"] for f in report["failed"]] == [str(src / "broken.jpg")]
    assert "cannot decode" in report["failed"][0]["error"]
    assert json.loads((out / "report.json").read_text())["written"] == report["written"]
    predictor = CheckpointPredictor.from_run(resolve_checkpoint(run_dir), device="cpu")
    for stem in ("1", "2"):
        rgb = read_rgb(src / f"{stem}.bmp")
        png = np.asarray(Image.open(out / "focus" / f"{stem}.png"))
        raw = np.load(out / "focus" / f"{stem}.npy")
        ov = np.asarray(Image.open(out / "overlay" / f"{stem}.png"))
        assert png.shape == raw.shape == rgb.shape[:2] and png.dtype == np.uint8 and raw.dtype == np.float32
        assert ov.shape == rgb.shape
        np.testing.assert_array_equal(png, np.clip(raw * 255 + 0.5, 0, 255).astype(np.uint8))
        np.testing.assert_allclose(raw, predictor.predict_image(rgb)["focus"], atol=1e-6)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # inputs untouched


def test_large_images_are_tiled_automatically(tmp_path, run_dir):
    write_image(tmp_path / "in" / "big.png", 300, 700, seed=1)
    write_image(tmp_path / "in" / "small.png", 120, 160, seed=2)
    out = tmp_path / "out"
    cfg = _cfg(tmp_path, [f"ckpt={run_dir}", f"input={tmp_path}/in/*.png", f"output={out}", "overlay=false",
                          "tile.above=600", "tile.size=256", "tile.overlap=0.25", "device=cpu"])
    report = predict(cfg)
    assert report["tiled"] == ["big"] and sorted(report["written"]) == ["big", "small"]
    assert np.asarray(Image.open(out / "focus" / "big.png")).shape == (300, 700)
    assert not (out / "overlay").exists()


def test_empty_folder_unknown_checkpoint_and_all_corrupt_fail_clearly(tmp_path, run_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictInputError, match="no image files in"):
        predict(_cfg(tmp_path, [f"ckpt={run_dir}", f"input={tmp_path}/empty", f"output={tmp_path}/o"]))
    with pytest.raises(PredictInputError, match="input not found"):
        predict(_cfg(tmp_path, [f"ckpt={run_dir}", f"input={tmp_path}/nope", f"output={tmp_path}/o"]))
    write_image(tmp_path / "one" / "a.png", 40, 40)
    with pytest.raises(CheckpointSpecError, match="checkpoint or run folder not found"):
        predict(_cfg(tmp_path, [f"ckpt={tmp_path}/no_run", f"input={tmp_path}/one", f"output={tmp_path}/o"]))
    with pytest.raises(CheckpointSpecError, match="is not a train run folder"):
        predict(_cfg(tmp_path, [f"ckpt={tmp_path}/one", f"input={tmp_path}/one", f"output={tmp_path}/o"]))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(RuntimeError, match="no image could be predicted"):
        predict(_cfg(tmp_path, [f"ckpt={run_dir}", f"input={tmp_path}/bad", f"output={tmp_path}/o2"]))


def test_outputs_never_overwrite_inputs(tmp_path, run_dir):
    """Predicting a previous output folder into itself: refused before anything is written."""
    img = write_image(tmp_path / "d" / "focus" / "a.png", 32, 48)
    data = img.read_bytes()
    with pytest.raises(PredictInputError, match="would overwrite the input"):
        predict(_cfg(tmp_path, [f"ckpt={run_dir}", f"input={img}", f"output={tmp_path}/d", "device=cpu"]))
    assert img.read_bytes() == data
    # a folder input skips files inside the output's map folders, so outputs are not re-predicted
    write_image(tmp_path / "d" / "b.png", 32, 48)
    assert [r.as_posix() for _, r in collect_inputs(str(tmp_path / "d"), recursive=True,
                                                   exclude=[tmp_path / "d" / "focus"])] == ["b"]


def test_same_stem_inputs_keep_their_suffix(tmp_path):
    write_image(tmp_path / "a.png", 8, 8)
    write_image(tmp_path / "a.jpg", 8, 8)
    write_image(tmp_path / "b.png", 8, 8)
    assert sorted(r.as_posix() for _, r in collect_inputs(str(tmp_path))) == ["a_jpg", "a_png", "b"]


def test_links_to_photos_elsewhere_are_named_by_the_link(tmp_path):
    # a folder (or a glob) of symbolic links to photos in another folder: each map is named after its link
    # (resolving the link first made the name relative to a folder that does not hold it: a traceback)
    target = write_image(tmp_path / "elsewhere" / "IMG_0001.png", 8, 8)
    (tmp_path / "links" / "sub").mkdir(parents=True)
    (tmp_path / "links" / "hold_out_a.png").symlink_to(target)
    (tmp_path / "links" / "sub" / "b.png").symlink_to(target)
    assert [(f.name, r.as_posix()) for f, r in collect_inputs(str(tmp_path / "links"), recursive=True)] == [
        ("hold_out_a.png", "hold_out_a"), ("b.png", "sub/b")]
    assert [r.as_posix() for _, r in collect_inputs(str(tmp_path / "links" / "*.png"))] == ["hold_out_a"]
    # ".." after a link to a folder is the folder above the link's target, as the glob read it, not the link's
    (tmp_path / "elsewhere" / "deeper").mkdir()
    (tmp_path / "to_deeper").symlink_to(tmp_path / "elsewhere" / "deeper")
    [(file, name)] = collect_inputs(str(tmp_path / "to_deeper" / ".." / "*.png"))
    assert file.resolve() == target.resolve() and file.is_file() and name.as_posix() == "IMG_0001"
    assert [r.as_posix() for _, r in collect_inputs(str(tmp_path / "links" / "sub" / "b.png"))] == ["b"]


def test_model_pipeline_extra_maps_are_saved_as_npy_and_png(tmp_path):
    write_image(tmp_path / "in" / "x.png", 20, 30)
    cfg = _cfg(tmp_path, [f"input={tmp_path}/in", f"output={tmp_path}/out"])
    predictor, name = build_predictor(model_cfg=OmegaConf.create(
        {"_target_": "tests.test_predict.FakeBlurPipeline", "scale": 3.0}))
    assert name == "FakeBlurPipeline"
    report = predict(cfg, predictor, name)
    rgb = read_rgb(tmp_path / "in" / "x.png")
    radius = np.load(tmp_path / "out" / "blur_radius" / "x.npy")
    np.testing.assert_allclose(radius, (1 - rgb.mean(2).astype(np.float32) / 255) * 3.0, atol=1e-6)
    png = np.asarray(Image.open(tmp_path / "out" / "blur_radius" / "x.png"))
    lo, hi = report["ranges"]["x"]["blur_radius"]
    assert (lo, hi) == pytest.approx((radius.min(), radius.max()))
    np.testing.assert_allclose(png / 255.0, (radius - lo) / (hi - lo), atol=1 / 255)


def test_model_without_predict_image_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no predict_image"):
        build_predictor(model_cfg=OmegaConf.create({"_target_": "torch.nn.Identity"}), model_name="identity")
    with pytest.raises(ValueError, match="pass ckpt="):
        build_predictor()


@pytest.mark.slow
def test_predict_cli_end_to_end(tmp_path, run_dir):
    write_image(tmp_path / "in" / "a.png", 40, 56)
    proc = run_module("dbd_lightning.predict", [f"ckpt={run_dir}/checkpoints/epoch_000.ckpt", f"input={tmp_path}/in",
                                                f"output={tmp_path}/out", "device=cpu"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 image(s) written" in proc.stdout
    assert np.asarray(Image.open(tmp_path / "out" / "focus" / "a.png")).shape == (40, 56)


def test_model_option_with_a_trainable_dbd_config_asks_for_a_checkpoint(tmp_path):
    from dbd_lightning.predict import make_predictor

    cfg = _cfg(tmp_path, ["model=dffnet_small", f"input={tmp_path}", f"output={tmp_path}/o"])
    with pytest.raises(ValueError, match="Trainable DBD networks need ckpt="):
        make_predictor(cfg)


def test_best_checkpoint_among_several_is_the_one_last_ckpt_records(tmp_path):
    from dbd_lightning.runs.resolver import find_checkpoint

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("epoch_001.ckpt", "epoch_004.ckpt"):
        torch.save({"state_dict": {}}, folder / name)
    with pytest.raises(CheckpointSpecError, match="pick one with which="):
        find_checkpoint(tmp_path)
    key = "ModelCheckpoint{'monitor': 'val/synthetic/mae', 'mode': 'min'}"
    torch.save({"state_dict": {}, "callbacks": {key: {"best_model_path": "/elsewhere/checkpoints/epoch_001.ckpt"}}},
               folder / "last.ckpt")
    assert find_checkpoint(tmp_path) == folder / "epoch_001.ckpt"
    assert find_checkpoint(tmp_path, "last") == folder / "last.ckpt"
    assert find_checkpoint(tmp_path, "epoch_004.ckpt") == folder / "epoch_004.ckpt"


def test_outputs_of_earlier_runs_are_not_taken_as_inputs(tmp_path):
    from dbd_lightning.predict import output_folders

    src = tmp_path / "photos"
    write_image(src / "a.png", 20, 30)
    pipe = FakeBlurPipeline()
    for out in (src / "pred", src):  # output inside the input folder, then the input folder itself
        for _ in range(2):  # the second run must not predict the first run's maps
            cfg = _cfg(tmp_path, [f"input={src}", f"output={out}", "recursive=true"])
            assert predict(cfg, pipe, "fake")["written"] == ["a"]
    assert {src / "blur_radius", src / "pred"} <= set(output_folders(src, src))
