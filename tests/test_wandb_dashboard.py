"""What the W&B dashboard shows: offline runs read back from their files (media + run records).

The pinned wandb casts image arrays with ``astype(uint8)`` and does not rescale, so a [0, 1]
float grid became an all-black panel while a test that only saw ``log_image`` being called
passed. These tests open the PNG / table files a sync would upload and check the pixels and
numbers against what the code computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dbd_lightning.data.io import list_images, read_mask, read_rgb
from dbd_lightning.metrics.describe import describe_convention
from dbd_lightning.tasks import detection

from .helpers import TINY, compose_cfg
from .run_fixtures import CUHK_SAMPLE, make_run
from .wandb_records import read_run

CELL, PAD = 64, 2  # TINY's 64 px images; make_grid's padding


def _run_folder(out: Path) -> Path:
    (run,) = sorted((out / "wandb").glob("offline-run-*"))
    return run


def _media(run: Path, record: dict, key: str) -> Path:
    """The media file a history entry ``key`` points to (image or table)."""
    if f"{key}/filenames" in record:
        (name,) = record[f"{key}/filenames"]
    else:
        name = record[f"{key}/path"]
    return run / "files" / name


def _table(run: Path, record: dict, key: str) -> dict:
    return json.loads(_media(run, record, key).read_text())


def _entries(history: list[dict], key: str) -> list[dict]:
    return [h for h in history if f"{key}/_type" in h]


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """A 1-epoch tiny DFFNet run with the W&B logger (offline); the float grids the task built."""
    from dbd_lightning.train import run

    out = tmp_path_factory.mktemp("wandb_train")
    grids: list[dict] = []
    original = detection.prediction_grid

    def recording_grid(image, mask, pred):
        grid = original(image, mask, pred)
        grids.append({"mask": mask.clone(), "grid": grid.clone()})
        return grid

    detection.prediction_grid = recording_grid
    try:
        real = "+data.datamodule.val.cuhk_sample"  # a second validation set: one panel per set, by name
        cfg = compose_cfg(out, ["model=dffnet_small", "logger=wandb", *TINY, "trainer.max_epochs=1",
                                "trainer.num_sanity_val_steps=0", "model.log_images=2", "~callbacks.lr_monitor",
                                f"{real}._target_=dbd_lightning.data.folder.ImageMaskFolder",
                                f"{real}.root={CUHK_SAMPLE}", f"{real}.polarity=white_in_focus"])
        metrics = run(cfg)
    finally:
        detection.prediction_grid = original
    folder = _run_folder(out)
    (run_file,) = folder.glob("run-*.wandb")
    return {"cfg": cfg, "metrics": metrics, "grids": grids, "folder": folder, "records": read_run(run_file)}


@pytest.mark.parametrize("index,name", [(0, "synthetic"), (1, "cuhk_sample")])
def test_validation_grid_panel_shows_the_grid(train_run, index, name):
    folder, history = train_run["folder"], train_run["records"]["history"]
    entries = _entries(history, f"val/{name}/predictions")
    assert len(entries) == 1 and len(train_run["grids"]) == 2  # one grid per set and validation epoch
    pixels = _png(_media(folder, entries[0], f"val/{name}/predictions"))
    expected = train_run["grids"][index]["grid"].permute(1, 2, 0).numpy() * 255.0
    assert pixels.dtype == np.uint8 and pixels.shape == expected.shape
    assert np.abs(pixels.astype(np.float64) - expected).max() <= 1.0  # the panel is the grid, within one grey level
    masks = train_run["grids"][index]["mask"]
    assert 0 < float(masks.mean()) < 1  # both classes present, so the GT check below can fail
    for i, mask in enumerate(masks):
        top, left = PAD + i * (CELL + PAD), PAD + (CELL + PAD)  # GT = second column
        gt_cell = pixels[top:top + CELL, left:left + CELL]
        assert np.array_equal(gt_cell, np.repeat(mask[0].numpy()[..., None] * 255, 3, axis=2).astype(np.uint8))
        image_cell = pixels[top:top + CELL, PAD:PAD + CELL]
        assert image_cell.mean() > 20 and image_cell.std() > 5  # a photo, not a black square


def test_test_set_table_pr_chart_and_convention_in_the_run(train_run):
    folder, rec, metrics = train_run["folder"], train_run["records"], train_run["metrics"]
    (entry,) = _entries(rec["history"], "test/table")
    table = _table(folder, entry, "test/table")
    assert table["columns"][:4] == ["dataset", "mae", "fbeta", "iou"]
    (row,) = table["data"]
    assert row[0] == "synthetic"
    assert row[1:] == pytest.approx([metrics[f"test/synthetic/{m}"] for m in table["columns"][1:]])
    # the PR curve as a W&B line chart: a model | recall | precision table + a line panel over it
    chart = rec["config"]["_wandb/visualize/test/synthetic/pr_curve"]["panel_config"]
    assert chart["panelDefId"] == "wandb/line/v0"
    assert chart["fieldSettings"] == {"x": "recall", "y": "precision", "stroke": "model"}
    (entry,) = _entries(rec["history"], "test/synthetic/pr_curve_table")
    curve = _table(folder, entry, "test/synthetic/pr_curve_table")
    assert curve["columns"] == ["model", "recall", "precision"] and len(curve["data"]) == 256
    values = np.array([r[1:] for r in curve["data"]])
    assert ((values >= 0) & (values <= 1)).all()
    summary = rec["summary"]
    assert summary["metric_convention"] == describe_convention(**train_run["cfg"].metrics)
    assert summary["test/synthetic/mae"] == pytest.approx(metrics["test/synthetic/mae"])


def test_eval_uploads_tables_pr_chart_and_pixel_exact_samples(tmp_path):
    from omegaconf import open_dict

    from dbd_lightning.eval import evaluate

    run = make_run(tmp_path / "runs", seed=0)
    cfg = compose_cfg(tmp_path / "out", ["data=folder", f"data.root={CUHK_SAMPLE}", "data.num_workers=0",
                                         f"ckpt={run}", "names=[A]", "device=cpu", "wandb=true",
                                         "report.grid_samples=2"], config_name="eval")
    with open_dict(cfg):
        cfg.data.datamodule.test = {"cuhk": {"_target_": "dbd_lightning.data.folder.ImageMaskFolder",
                                             "root": str(CUHK_SAMPLE), "polarity": "white_in_focus"}}
        cfg.data.datamodule.train, cfg.data.datamodule.val = {}, {}
    evaluate(cfg)
    out = tmp_path / "out"
    folder = _run_folder(out)
    (run_file,) = folder.glob("run-*.wandb")
    rec = read_run(run_file)
    (h,) = [h for h in rec["history"] if "eval/table/_type" in h]  # one log call
    report = json.loads((out / "results.json").read_text())
    results = report["results"]["A"]["cuhk"]

    table = _table(folder, h, "eval/table")
    assert table["columns"] == ["model", "cuhk/mae", "cuhk/fbeta", "cuhk/iou"]
    assert table["data"][0][0] == "A"
    assert table["data"][0][1:] == pytest.approx([results[m] for m in ("mae", "fbeta", "iou")])
    per = _table(folder, h, "eval/cuhk/table")
    assert per["data"][0][1:] == pytest.approx([results[m] for m in ("mae", "fbeta", "iou")])

    # PR curve: the chart's table holds the report's curve (pr_curves.json), point by point
    chart = rec["config"]["_wandb/visualize/eval/cuhk/pr_curve"]["panel_config"]
    assert chart["fieldSettings"] == {"x": "recall", "y": "precision", "stroke": "model"}
    curve = _table(folder, h, "eval/cuhk/pr_curve_table")
    ref = json.loads((out / "pr_curves.json").read_text())["cuhk"]["A"]
    ok = np.isfinite(ref["precision"]) & np.isfinite(ref["recall"])
    assert [r[0] for r in curve["data"]] == ["A"] * int(ok.sum())
    assert np.allclose([r[1] for r in curve["data"]], np.asarray(ref["recall"])[ok])
    assert np.allclose([r[2] for r in curve["data"]], np.asarray(ref["precision"])[ok])

    # the report's figures, uploaded as written (and not blank)
    for key, name in (("eval/cuhk/pr_curve_png", "pr_cuhk.png"), ("eval/qualitative_grid", "qualitative_grid.png")):
        uploaded, written = _png(_media(folder, h, key)), _png(out / name)
        assert np.array_equal(uploaded, written), key
        assert uploaded.min() < 64 and uploaded.max() > 192, key

    # the sample strips: input and GT exactly as read from disk, the model's map within one grey level
    from dbd_lightning.callbacks.wandb_tools import SAMPLE_GAP
    from dbd_lightning.inference.predictor import CheckpointPredictor
    from dbd_lightning.runs.resolver import resolve_checkpoint

    predictor = CheckpointPredictor.from_run(resolve_checkpoint(run), device="cpu")
    images = list_images(CUHK_SAMPLE / "image")[:2]
    gts = {p.stem: p for p in list_images(CUHK_SAMPLE / "gt")}
    assert h["eval/cuhk/samples/count"] == 2
    assert h["eval/cuhk/samples/captions"] == [f"cuhk/{p.stem}: input | GT | A" for p in images]
    for name, image_path in zip(h["eval/cuhk/samples/filenames"], images, strict=True):
        strip = _png(folder / "files" / name)
        rgb = read_rgb(image_path)
        w = rgb.shape[1]
        panels = [strip[:, k * (w + SAMPLE_GAP):k * (w + SAMPLE_GAP) + w] for k in range(3)]
        assert strip.shape == (rgb.shape[0], 3 * w + 2 * SAMPLE_GAP, 3)
        assert np.array_equal(panels[0], rgb)
        mask = read_mask(gts[image_path.stem], "white_in_focus")
        assert 0 < mask.mean() < 1 and set(np.unique(panels[1])) == {0, 255}
        assert np.array_equal(panels[1][..., 0], (mask * 255).astype(np.uint8))
        focus = np.asarray(predictor.predict_image(rgb)["focus"], np.float64)
        assert np.abs(panels[2][..., 0].astype(np.float64) - focus * 255).max() <= 1.0
    assert rec["summary"]["metric_convention"] == report["convention"]


def test_grid_pictures_are_uint8_for_every_image_logger():
    from types import SimpleNamespace

    from dbd_lightning.tasks.visualize import grid_to_uint8, log_image_to_loggers

    grid = torch.tensor([0.0, 0.5, 1.0, 0.2]).view(1, 2, 2).expand(3, 2, 2)
    picture = grid_to_uint8(grid)
    assert picture.dtype == np.uint8 and picture.shape == (2, 2, 3)
    assert picture[..., 0].tolist() == [[0, 128], [255, 51]]  # round(255 x): 0 and 1 stay exactly 0 / 255
    got = []
    wandb_like = SimpleNamespace(log_image=lambda key, images, caption, step: got.append(("log_image", images[0])))
    tensorboard_like = SimpleNamespace(experiment=SimpleNamespace(
        add_image=lambda key, img, global_step, dataformats: got.append((dataformats, img))))
    csv_like = SimpleNamespace(experiment=SimpleNamespace())
    assert log_image_to_loggers([wandb_like, tensorboard_like, csv_like], "k", picture, "c", 3) == 2
    assert [k for k, _ in got] == ["log_image", "HWC"] and all(img is picture for _, img in got)
    with pytest.raises(ValueError, match="uint8"):
        log_image_to_loggers([wandb_like], "k", grid.permute(1, 2, 0).numpy(), "c", 3)
