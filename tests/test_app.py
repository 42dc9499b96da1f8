"""The web app's callback without a browser (and without Gradio): ``dbd_lightning.app.core``.

A stand-in predictor with a known map makes every picture computable by hand: the in-focus map,
the overlay, the thresholded mask, an extra map's scaled picture and legend. Refused files
(a text file, a 1x1 image, a 48 MP photo) are messages, and the other photos are still predicted.
The command exits 2 with the install line when Gradio is missing. The page itself (Gradio + Chromium):
``tests/test_app_browser.py`` (slow).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dbd_lightning.app.core import FocusApp, Settings, check_image, legend_html
from dbd_lightning.render import overlay

H, W = 24, 40


class Ramp:
    """In-focus probability rising left to right (0 at column 0, 1 at the last); optional blur radius."""

    def __init__(self, radius: bool = False) -> None:
        self.radius = radius
        self.calls = 0

    def predict_image(self, rgb):
        self.calls += 1
        h, w = rgb.shape[:2]
        focus = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
        maps = {"focus": focus}
        if self.radius:  # 6 px blurred on the left, 0.5 px sharp on the right
            maps["blur_radius"] = (6.0 - 5.5 * focus).astype(np.float32)
        return maps


def _photo(path, size=(W, H)):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _app(tmp_path, predictor=None, **settings):
    return FocusApp(Settings(**settings), out_root=tmp_path / "out", predictors={"ramp": predictor or Ramp()})


def test_focus_overlay_and_mask_are_the_maps_pictures(tmp_path):
    photo = _photo(tmp_path / "a.png")
    result = _app(tmp_path).predict([str(photo)], "ramp", threshold=0.6)
    assert result.message.startswith("- 1 of 1 photo(s) predicted with ramp; mask threshold 0.6.")
    names = [p.rsplit("/", 1)[1] for p, _ in result.gallery]
    assert names == ["a_focus.png", "a_overlay.png", "a_mask.png"]
    assert [c.split(" · ")[1] for _, c in result.gallery] == [
        "in-focus map (white = in focus)", "overlay (yellow = in focus, purple = blurred)",
        "mask (white = in-focus probability >= 0.6)"]
    assert sorted(result.files) == sorted(p for p, _ in result.gallery)
    focus, over, mask = (np.array(Image.open(p)) for p, _ in result.gallery)
    ramp = np.linspace(0.0, 1.0, W)
    assert np.array_equal(focus, np.tile(np.round(ramp * 255).astype(np.uint8), (H, 1)))  # white = in focus
    # column x is in focus from x / (W - 1) >= 0.6, i.e. x >= 23.4: columns 24..39 white
    assert np.array_equal(mask, np.tile(np.where(np.arange(W) >= 24, 255, 0).astype(np.uint8), (H, 1)))
    rgb = np.array(Image.open(photo))
    assert np.array_equal(over, overlay(rgb, np.tile(ramp.astype(np.float32), (H, 1)), 0.5))
    # the overlay's first column is half the photo, half viridis' purple (68, 1, 84)
    hand = np.round(rgb[:, 0].astype(float) * 0.5 + np.array([68, 1, 84]) * 0.5)
    assert np.abs(over[:, 0].astype(float) - hand).max() <= 1


def test_extra_map_is_scaled_with_its_range_as_legend(tmp_path):
    result = _app(tmp_path, Ramp(radius=True)).predict([str(_photo(tmp_path / "k.jpg"))], "ramp")
    caption = dict((p.rsplit("/", 1)[1], c) for p, c in result.gallery)["k_blur_radius.png"]
    assert caption == "k.jpg · blur_radius (black = 0.50, white = 6.00 px)"
    picture = np.array(Image.open(result.folder / "k_blur_radius.png"))
    assert picture[0, 0] == 255 and picture[0, -1] == 0  # 6 px (most blurred) white, 0.5 px black
    values = np.load(result.folder / "k_blur_radius.npy")
    assert values[0, 0] == pytest.approx(6.0) and values[0, -1] == pytest.approx(0.5)
    assert str(result.folder / "k_blur_radius.npy") in result.files
    assert "0.50 px" in result.legend and "6.00 px" in result.legend and "k.jpg: blur_radius" in result.legend
    assert legend_html("<b>", 0, 1, "px").count("<b>") == 0  # file names are escaped


def test_bad_files_are_messages_and_the_rest_is_predicted(tmp_path):
    (tmp_path / "notes.txt").write_text("not a photo")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    Image.new("L", (8000, 6000)).save(tmp_path / "big.png")  # 48 MP: refused from its header, never decoded
    good = _photo(tmp_path / "good.png")
    predictor = Ramp()
    files = [str(tmp_path / n) for n in ("notes.txt", "dot.png", "big.png")] + [str(good)]
    result = _app(tmp_path, predictor).predict(files, "ramp")
    assert predictor.calls == 1
    assert [p.rsplit("/", 1)[1] for p, _ in result.gallery] == ["good_focus.png", "good_overlay.png", "good_mask.png"]
    assert result.messages == [
        "1 of 4 photo(s) predicted with ramp; mask threshold 0.5.",
        "notes.txt is not an image file this page can read; upload a photo (JPEG, PNG, TIFF, BMP or WebP)",
        "dot.png is 1x1 pixels, too small to find in-focus regions in; upload a photo at least 16 pixels on "
        "each side",
        "big.png is 8000x6000 pixels (48.0 MP), more than this page takes (24 MP, --max-megapixels); downscale "
        "it, or predict it at full size with `python -m dbd_lightning.predict ckpt=... input=big.png "
        "output=DIR`, which tiles large photos",
    ]


def test_size_limits_come_from_the_settings(tmp_path):
    photo = _photo(tmp_path / "p.png", size=(40, 30))  # 0.0012 MP
    check_image(photo, Settings(min_side=30, max_megapixels=0.0012))
    with pytest.raises(ValueError, match="at least 31 pixels"):
        check_image(photo, Settings(min_side=31))
    with pytest.raises(ValueError, match=r"0.0011 MP"):
        check_image(photo, Settings(max_megapixels=0.0011))


def test_unusable_model_and_no_photo_are_messages(tmp_path):
    app = _app(tmp_path)
    photo = str(_photo(tmp_path / "a.png"))
    assert "released models: dffnet_lite0_cuhk, dffnet_lite0_synth" in app.predict([photo], "zoo:nope").message
    assert "not found" in app.predict([photo], str(tmp_path / "no_run")).message
    assert "no model chosen" in app.predict([photo], " ").message
    assert app.predict(None, "ramp").message.startswith("- No photo yet")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_same_names_do_not_overwrite_each_other(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    files = [str(_photo(tmp_path / d / "a.png")) for d in ("x", "y")]
    result = _app(tmp_path).predict(files, "ramp")
    assert [p.rsplit("/", 1)[1] for p, _ in result.gallery][::3] == ["a_focus.png", "a_2_focus.png"]
    again = _app(tmp_path).predict(files[:1], "ramp")  # a second click: a new folder, nothing replaced
    assert again.folder != result.folder and (result.folder / "a_focus.png").is_file()


def test_zoo_model_through_the_callback(tmp_path):
    """The default model end to end: the page's map is the predictor's (same process, same numbers)."""
    from dbd_lightning.data.image_files import read_rgb
    from dbd_lightning.render import to_uint8

    photo = _photo(tmp_path / "z.png", size=(64, 48))
    app = FocusApp(Settings(device="cpu"), out_root=tmp_path / "out")
    result = app.predict([str(photo)], "zoo:dffnet_lite0_synth")
    predictor, label = app.predictor("zoo:dffnet_lite0_synth")
    assert label == "zoo:dffnet_lite0_synth"
    expected = to_uint8(predictor.predict_image(read_rgb(photo))["focus"])
    assert np.array_equal(np.array(Image.open(result.folder / "z_focus.png")), expected)


def _main(monkeypatch, argv, gradio_installed):
    from dbd_lightning.app import __main__ as cli

    real = importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: (real("json") if gradio_installed else None) if name == "gradio"
                        else real(name, *a))
    return cli.main(argv)


def test_command_without_gradio_says_how_to_install(monkeypatch, capsys):
    assert _main(monkeypatch, [], gradio_installed=False) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: the web app needs Gradio, which is not installed: pip install -e '.[app]'"]


def test_command_refuses_an_unusable_ckpt_before_serving(monkeypatch, capsys):
    assert _main(monkeypatch, ["--ckpt", "zoo:nope"], gradio_installed=True) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --ckpt zoo:nope: no released model 'nope'")


@pytest.mark.skipif(importlib.util.find_spec("gradio") is not None, reason="Gradio is installed here")
def test_module_without_gradio_exits_2():
    res = subprocess.run([sys.executable, "-m", "dbd_lightning.app"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "pip install -e '.[app]'" in res.stderr


def test_page_builds_with_the_models_to_choose():
    pytest.importorskip("gradio", reason="the page needs Gradio (pip install -e '.[app]')")
    from dbd_lightning.app.ui import build_page, model_choices

    choices = model_choices("zoo:dffnet_lite0_synth")
    assert choices[:2] == ["zoo:dffnet_lite0_cuhk", "zoo:dffnet_lite0_synth"] and "model:karaali" in choices
    assert model_choices("runs/x")[0] == "runs/x"
    page = build_page(FocusApp(Settings()), "zoo:dffnet_lite0_synth")
    assert {"photos", "model", "threshold", "predict", "results", "status"} <= {
        b.elem_id for b in page.blocks.values() if getattr(b, "elem_id", None)}


def test_karaali_pipeline_shows_its_blur_radius_in_pixels(tmp_path):
    """``model:karaali`` (random B-NET / E-NET weights, 64x64 crop): the radius picture, values and legend."""
    import torch

    from dbd_lightning.models.karaali import BNet, ENet
    from dbd_lightning.render import normalised_png

    from .test_karaali_pipeline import _crop, _save_random

    torch.manual_seed(0)
    bnet, enet = _save_random(tmp_path / "bnet.ckpt", BNet()), _save_random(tmp_path / "enet.ckpt", ENet())
    Image.fromarray(_crop(64)).save(tmp_path / "img.png")
    settings = Settings(model_overrides=(f"model.bnet_ckpt={bnet}", f"model.enet_ckpt={enet}", "model.device=cpu"))
    result = FocusApp(settings, out_root=tmp_path / "out").predict([str(tmp_path / "img.png")], "model:karaali")
    assert result.message.startswith("- 1 of 1 photo(s) predicted with karaali")
    radius = np.load(result.folder / "img_blur_radius.npy")
    assert radius.shape == (64, 64) and 0.5 - 1e-4 <= radius.min() <= radius.max() <= 6.0 + 1e-4
    captions = dict((p.rsplit("/", 1)[1], c) for p, c in result.gallery)
    lo, hi = float(radius.min()), float(radius.max())
    assert captions["img_blur_radius.png"] == f"img.png · blur_radius (black = {lo:.2f}, white = {hi:.2f} px)"
    assert f"{lo:.2f} px" in result.legend and f"{hi:.2f} px" in result.legend
    assert np.array_equal(np.array(Image.open(result.folder / "img_blur_radius.png")), normalised_png(radius)[0])
    assert set(np.unique(np.array(Image.open(result.folder / "img_focus.png")))) <= {0, 255}  # Eq. 5's mask
