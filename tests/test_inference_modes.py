"""Scale-aware inference: seamless tile blending, scale mode = resize -> net -> resize back, eval rows per mode."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from dbd_lightning.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from dbd_lightning.inference.modes import scaled_size, tile_side
from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.inference.settings import InferenceSettings, InferSettings
from dbd_lightning.inference.tiling import axis_windows, blend_tiles, cosine_taper, tile_starts
from dbd_lightning.utils.errors import UserError


class TileMeanNet(nn.Module):
    """Outputs one constant per input: the logit of the input's mean red value (a "constant-per-tile" network)."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def forward(self, x):
        self.seen += [tuple(x.shape[-2:])] * x.shape[0]
        c = x[:, :1].mean(dim=(2, 3), keepdim=True)
        return {"logits": c.expand(-1, 1, *x.shape[-2:]) * 2.0}


class ConvNet(nn.Module):
    """A 3x3 conv (not per pixel: the output depends on the input's scale)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 1, 3, padding=1)
        self.seen: list[tuple[int, int]] = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        return {"logits": self.conv(x)}


def ramp_image(h, w):
    """Red = a smooth ramp over the image (so every tile's mean differs), green / blue noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)
    rgb[..., 0] = np.clip(255 * (0.6 * xx / w + 0.4 * yy / h), 0, 255).astype(np.uint8)
    return rgb


def max_curvature(m):
    """Largest |second difference| along x and along y."""
    return max(np.abs(np.diff(m, 2, axis=1)).max(), np.abs(np.diff(m, 2, axis=0)).max())


def test_cosine_tapers_are_a_partition_of_unity_and_vanish_at_tile_edges():
    t = cosine_taper(16)
    np.testing.assert_allclose(t + t[::-1], 1.0, atol=1e-6)
    assert t[0] == pytest.approx(np.sin(np.pi / 64) ** 2) and t[0] < 0.01 and t[-1] > 0.99
    starts = tile_starts(300, 64, 16)
    total = np.zeros(300, np.float32)
    for s, w in zip(starts, axis_windows(300, 64, starts, 16, "hann"), strict=True):
        total[s:s + 64] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-5)  # overlaps <= tile/2: the windows sum to 1 everywhere
    with pytest.raises(ValueError, match="unknown tile blending window"):
        axis_windows(300, 64, starts, 16, "box")


def test_hann_blending_of_a_constant_per_tile_network_has_no_seam():
    """Each tile predicts one constant; the blend must be smooth: its curvature is bounded by that of the taper.

    Two neighbouring constants a, b blended over L pixels give a + (b - a) sin^2(pi/2 (t + 0.5) / L): second
    difference <= |b - a| (pi / L)^2 / 2, with |b - a| at most the largest difference between neighbouring
    tiles (computed here by hand). A seam (a step at a tile edge) breaks that bound, as the linear ramps do.
    """
    rgb, t, L = ramp_image(300, 500), 128, 32  # overlap = 0.25 * 128; actual overlaps are >= L (flatter)
    settings = InferenceSettings(image_size=(t, t), infer=InferSettings(mode="tile", scale=1.0, overlap=0.25))
    kw = dict(size_multiple=1, device="cpu")
    net = TileMeanNet()
    hann_pred = CheckpointPredictor(net, settings.updated({"tile": {"window": "hann"}}), **kw)
    hann = hann_pred.predict_image(rgb)["focus"]
    net = hann_pred.backend.net  # the inference copy that ran (the torch backend never runs the trained module)
    linear = CheckpointPredictor(TileMeanNet(), settings.updated({"tile": {"window": "linear"}}), **kw
                                 ).predict_image(rgb)["focus"]
    ys, xs = tile_starts(300, t, L), tile_starts(500, t, L)
    assert set(net.seen) == {(t, t)} and len(net.seen) == len(ys) * len(xs)
    red = (rgb[..., 0] / 255.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    const = np.array([[1 / (1 + np.exp(-2 * red[y:y + t, x:x + t].mean())) for x in xs] for y in ys])
    step = max(np.abs(np.diff(const, axis=0)).max(), np.abs(np.diff(const, axis=1)).max())
    assert step > 0.1  # neighbouring tiles really disagree
    bound = step * (np.pi / L) ** 2 / 2
    assert max_curvature(hann) <= bound * 1.02
    assert max_curvature(linear) > 3 * bound  # the old ramps leave steps at the tile edges


def test_tiles_reproduce_a_smooth_function_of_position_across_borders():
    """A per-pixel network on an image that encodes position: tiled = whole image, no trace of the tile grid."""
    rgb = ramp_image(150, 260)

    class RedNet(nn.Module):
        def forward(self, x):  # logit = normalised red: a smooth function of position here
            return {"logits": x[:, :1]}

    whole = CheckpointPredictor(RedNet(), InferenceSettings.papers_protocol(), size_multiple=1, device="cpu")
    tiled = CheckpointPredictor(RedNet(), {"image_size": [48, 48], "infer": {"mode": "tile", "scale": 1.0}},
                                size_multiple=1, device="cpu")
    np.testing.assert_allclose(tiled.predict_image(rgb)["focus"], whole.predict_image(rgb)["focus"], atol=1e-6)


def test_scale_mode_equals_manual_resize_net_resize_back():
    rgb = ramp_image(100, 150)
    net = ConvNet()
    pred = CheckpointPredictor(net, {"infer": {"mode": "scale", "scale": 0.5}}, size_multiple=8, device="cpu")
    focus = pred.predict_image(rgb)["focus"]
    net = pred.backend.net  # the inference copy that ran
    assert net.seen == [(48, 72)]  # 100 * 0.5 = 50 -> 48, 150 * 0.5 = 75 -> 72 (nearest multiples of 8)
    small = cv2.resize(rgb, (72, 48), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x = (small - 255 * np.array(IMAGENET_MEAN, np.float32)) / (255 * np.array(IMAGENET_STD, np.float32))
    with torch.no_grad():
        logits = net.conv(torch.from_numpy(x).permute(2, 0, 1)[None])
    ref = F.interpolate(torch.sigmoid(logits), size=(100, 150), mode="bilinear", align_corners=False)[0, 0].numpy()
    assert focus.shape == (100, 150)
    np.testing.assert_allclose(focus, ref, atol=1e-6)
    assert scaled_size(100, 150, 1.0, 32) == (96, 160) and scaled_size(10, 10, 0.5, 32) == (32, 32)


def test_tile_mode_tiles_are_image_size_over_scale_native_pixels():
    net = TileMeanNet()
    pred = CheckpointPredictor(net, {"image_size": [32, 32], "infer": {"mode": "tile", "scale": 0.5, "overlap": 0.25},
                                     "tile": {"batch": 64}}, size_multiple=1, device="cpu")
    pred.predict_image(ramp_image(130, 200))
    assert tile_side(32, 0.5) == 64
    # 64-pixel native tiles overlapping by 16: ceil((130-16)/48) = 3 rows, ceil((200-16)/48) = 4 columns
    net = pred.backend.net  # the inference copy that ran
    assert len(net.seen) == 12 and set(net.seen) == {(32, 32)}
    assert pred.uses_tiles(10, 10)  # tile mode: always, whatever the size
    assert not CheckpointPredictor(net, {"infer": {"mode": "scale"}}, device="cpu").uses_tiles(5000, 5000)


def test_blending_memory_is_one_float32_map_plus_tiles():
    """No float64 / full-size weight buffers: peak numpy allocation ~ the float32 result (4 bytes per pixel)."""
    h, w = 1500, 2000

    def predict(boxes):
        return [np.full((th, tw), 0.5, np.float32) for _, _, th, tw in boxes]

    tracemalloc.start()
    out = blend_tiles((h, w), (256, 256), 64, predict, batch=4, window="hann")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.dtype == np.float32 and np.allclose(out, 0.5, atol=1e-6)
    assert peak < h * w * 4 * 1.25  # the old float64 accumulator + weight image alone were 16 bytes per pixel


def test_config_keys_and_bad_values():
    cfg = OmegaConf.create({"tile": {"mode": "auto", "window": "linear"}, "infer": {"mode": "tile", "scale": 0.5}})
    s = InferenceSettings.from_mapping(cfg)
    assert (s.infer.mode, s.infer.scale, s.tile.window, s.tile.mode) == ("tile", 0.5, "linear", "auto")
    with pytest.raises(UserError, match="infer.mode='tiles' is not a mode"):
        InferenceSettings.from_mapping(OmegaConf.create({"infer": {"mode": "tiles"}}))
    with pytest.raises(UserError, match=r"infer.scale must be > 0 .*, got 0"):
        InferenceSettings.from_mapping(OmegaConf.create({"infer": {"mode": "scale", "scale": 0}}))


def test_eval_scores_each_checkpoint_once_per_inference_mode(tmp_path):
    """infer.mode=[resize,scale]: two rows per run, each equal to a hand computation with that mode's maps."""
    import json

    from omegaconf import open_dict

    from dbd_lightning.data.io import list_images, read_mask, read_rgb
    from dbd_lightning.eval import evaluate
    from dbd_lightning.runs.resolver import resolve_checkpoint

    from .helpers import compose_cfg
    from .run_fixtures import CUHK_SAMPLE, make_run

    run = make_run(tmp_path / "runs", seed=0)
    cfg = compose_cfg(tmp_path / "out", ["data=folder", f"data.root={CUHK_SAMPLE}", "data.num_workers=0",
                                         f"ckpt={run}", "device=cpu", "infer.mode=[resize,scale]", "infer.scale=0.5",
                                         "report.pr_curves=false", "report.grid_samples=0"], config_name="eval")
    with open_dict(cfg):
        cfg.data.datamodule.train, cfg.data.datamodule.val = {}, {}
    evaluate(cfg)
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert list(results) == ["run0 [resize]", "run0 [scale 0.5]"]
    images, gts = list_images(CUHK_SAMPLE / "image"), [read_mask(p) for p in list_images(CUHK_SAMPLE / "gt")]
    for mode, row in (("resize", "run0 [resize]"), ("scale", "run0 [scale 0.5]")):
        pred = CheckpointPredictor.from_run(resolve_checkpoint(run), {"infer": {"mode": mode, "scale": 0.5}},
                                            device="cpu")
        maes = [np.abs(pred.predict_image(read_rgb(p))["focus"].astype(np.float64) - g).mean()
                for p, g in zip(images, gts, strict=True)]
        assert results[row]["folder"]["mae"] == pytest.approx(np.mean(maes), abs=1e-5)
    assert results["run0 [resize]"]["folder"]["mae"] != results["run0 [scale 0.5]"]["folder"]["mae"]


def test_tile_mode_keeps_the_scale_when_the_image_is_smaller_than_a_tile():
    net = TileMeanNet()
    pred = CheckpointPredictor(net, {"image_size": [64, 64], "infer": {"mode": "tile", "scale": 0.5}}, size_multiple=8,
                               device="cpu")
    pred.predict_image(ramp_image(90, 300))  # tiles are 128 native px; only 90 rows: 90 * 0.5 = 45 -> 48
    net = pred.backend.net  # the inference copy that ran
    assert set(net.seen) == {(48, 64)}


@pytest.mark.parametrize("shape", [(320, 320), (333, 517), (480, 640)])
def test_blended_tiles_stay_within_the_tiles_value_range(shape):
    # every pixel is a convex combination of tile values: tiles of all ones blend to exactly 1 (float32 rounding of
    # the hann weights gave 1.0000002, which the metrics reject as "not a probability")
    ones = blend_tiles(shape, (256, 256), 64, lambda boxes: [np.ones((b[2], b[3]), np.float32) for b in boxes])
    assert ones.min() == 1.0 and ones.max() == 1.0
    rng = np.random.default_rng(0)
    maps = {}

    def predict(boxes):
        out = []
        for b in boxes:
            maps[b] = rng.uniform(0.2, 0.7, (b[2], b[3])).astype(np.float32)
            out.append(maps[b])
        return out

    mixed = blend_tiles(shape, (256, 256), 64, predict)
    assert mixed.min() >= min(m.min() for m in maps.values()) and mixed.max() <= max(m.max() for m in maps.values())
