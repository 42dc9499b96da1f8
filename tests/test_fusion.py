"""Test-time fusion (``infer.flip`` / ``infer.fusion_scales``): the fused map is the mean of the maps of the
mirrored and rescaled views, each computed by hand; off by default; bad values refused with the key named."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from dbd_lightning.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from dbd_lightning.inference.image_predictor import ImagePredictor
from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.inference.settings import InferenceSettings, InferSettings
from dbd_lightning.utils.errors import UserError


class RampPredictor(ImagePredictor):
    """``_probabilities``: a left-to-right ramp times input height / 1000, ignoring the pixels (so a mirrored
    view, mirrored back, is the opposite ramp), recording the network input sizes it was asked for."""

    def __init__(self, size_multiple=32, **infer):
        super().__init__(InferenceSettings(image_size=(320, 320), infer=InferSettings(**infer)), size_multiple)
        self.sizes: list[tuple[int, int]] = []

    def _probabilities(self, crops, input_size=None):
        size = input_size or self._input_size(*crops[0].shape[:2])
        self.sizes.append(tuple(size))
        out = []
        for c in crops:
            h, w = c.shape[:2]
            out.append(np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1)) * np.float32(size[0] / 1000))
        return out


def test_fusion_is_the_mean_of_the_views_computed_by_hand():
    rgb = np.zeros((20, 30, 3), np.uint8)
    ramp = np.tile(np.linspace(0, 1, 30, dtype=np.float32), (20, 1))
    plain = RampPredictor()
    np.testing.assert_allclose(plain.predict_image(rgb)["focus"], ramp * 0.32, atol=1e-7)
    assert plain.sizes == [(320, 320)] and plain.forwards_per_crop == 1

    flip = RampPredictor(flip=True)
    # ramp * 0.32 and its mirror (1 - ramp) * 0.32: the mean is 0.16 everywhere
    np.testing.assert_allclose(flip.predict_image(rgb)["focus"], np.full((20, 30), 0.16), atol=1e-6)

    both = RampPredictor(flip=True, fusion_scales=[0.5, 1.0], size_multiple=32)
    focus = both.predict_image(rgb)["focus"]
    assert both.sizes == [(160, 160), (160, 160), (320, 320), (320, 320)] and both.forwards_per_crop == 4
    np.testing.assert_allclose(focus, np.full((20, 30), (0.16 + 0.32) / 4), atol=1e-6)

    scales = RampPredictor(fusion_scales=[0.7, 1.3, 0.8], size_multiple=32)
    focus = scales.predict_image(rgb)["focus"]
    assert scales.sizes == [(224, 224), (416, 416), (256, 256)]  # 320 x 0.8 = 256, a multiple of 32
    np.testing.assert_allclose(focus, ramp * (0.224 + 0.416 + 0.256) / 3, atol=1e-6)


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 1, 5, padding=2)

    def forward(self, x):
        return {"logits": self.conv(x)}


def _by_hand(net: nn.Module, rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The eval transform (cv2 bilinear resize, ImageNet normalisation), the network, sigmoid, bilinear back."""
    small = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x = (small - 255 * np.array(IMAGENET_MEAN, np.float32)) / (255 * np.array(IMAGENET_STD, np.float32))
    with torch.no_grad():
        p = torch.sigmoid(net(torch.from_numpy(x).permute(2, 0, 1)[None])["logits"])
    return F.interpolate(p, size=rgb.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()


def test_flip_and_scale_fusion_of_a_real_network_equals_the_hand_computation():
    rgb = np.random.default_rng(3).integers(0, 256, (50, 70, 3)).astype(np.uint8)
    pred = CheckpointPredictor(ConvNet(), {"image_size": [64, 96], "infer": {"flip": True, "fusion_scales": [0.5, 1.0]}},
                               size_multiple=16, device="cpu", backend="torch")
    focus = pred.predict_image(rgb)["focus"]
    net = pred.backend.net
    views = []
    for size in ((32, 48), (64, 96)):
        views.append(_by_hand(net, rgb, size))
        views.append(_by_hand(net, np.ascontiguousarray(rgb[:, ::-1]), size)[:, ::-1])
    np.testing.assert_allclose(focus, np.mean(views, axis=0), atol=1e-6)
    plain = CheckpointPredictor(ConvNet(), InferenceSettings(image_size=(64, 96)), device="cpu", backend="torch")
    np.testing.assert_allclose(plain.predict_image(rgb)["focus"], views[2], atol=1e-6)  # off: one view
    assert np.abs(focus - views[2]).max() > 1e-3  # and the fusion changes the map


def test_fusion_keys_labels_and_bad_values():
    infer = InferenceSettings.from_mapping(OmegaConf.create({"infer": {"flip": True, "fusion_scales": [0.75, 1.0]}})).infer
    assert infer.flip is True and infer.fusion_scales == (0.75, 1.0)
    assert InferenceSettings.from_mapping(OmegaConf.create({})).infer.fusion_scales == (1.0,)  # off by default
    cfg = OmegaConf.create({"infer": {"scale": 0.5, "flip": True, "fusion_scales": [0.75, 1.0, 1.25]}})
    assert InferenceSettings.from_mapping(cfg, mode="resize").label == "resize +flip x0.75,1,1.25"
    assert InferenceSettings.from_mapping(cfg, mode="scale").label == "scale 0.5 +flip x0.75,1,1.25"
    for infer, key in (({"flip": "maybe"}, "infer.flip"), ({"fusion_scales": "abc"}, "infer.fusion_scales"),
                       ({"fusion_scales": [1.0, -2]}, "infer.fusion_scales"), ({"fusion_scales": []}, "infer.fusion_scales")):
        with pytest.raises(UserError, match=key):
            InferenceSettings.from_mapping(OmegaConf.create({"infer": infer}))
