"""Input sizes the encoder's stride does not divide: a clear ValueError (DFFNet family) or any size (the rest)."""

from __future__ import annotations

import pytest
import torch

from dbd_lightning.models.btbnet import BTBNet
from dbd_lightning.models.components.input_size import InputSizeError, nearest_multiples
from dbd_lightning.models.ddffnet.depth_net import DepthNet
from dbd_lightning.models.ddnet import DDNet
from dbd_lightning.models.dffnet import DFFNet
from dbd_lightning.models.pdnet import PDNet
from dbd_lightning.models.rdffnet import RDFFNet


def test_nearest_multiples():
    assert nearest_multiples(70, 32) == [64, 96]
    assert nearest_multiples(50, 32) == [32, 64]
    assert nearest_multiples(20, 32) == [32]


@pytest.mark.parametrize("cls", [DFFNet, PDNet, RDFFNet])
def test_dffnet_family_names_the_stride_and_the_nearest_sizes(cls):
    torch.manual_seed(0)
    net = cls("resnet18").eval()
    expected = r"70x50 .* stride 32 .* height 64 or 96, width 32 or 64 \(e\.g\. data\.image_size=\[64,64\]"
    with torch.no_grad(), pytest.raises(InputSizeError, match=expected) as info:
        net(torch.randn(1, 3, 70, 50))
    assert isinstance(info.value, ValueError)  # a ValueError, and a UserError for the entry points (exit 2)
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 96))["logits"].shape == (1, 1, 64, 96)
        # a size the encoder's ceil rounding makes fit still runs, as it did before the check
        assert net(torch.randn(1, 3, 61, 64))["logits"].shape == (1, 1, 61, 64)


@pytest.mark.parametrize("make", [lambda: DDNet("resnet18"), lambda: DepthNet("resnet18"),
                                  lambda: BTBNet(widths=(8,) * 5, ffic_channels=(8, 8, 8, 1))])
def test_nets_that_resize_between_levels_take_any_size(make):
    with torch.no_grad():
        out = make().eval()(torch.randn(1, 3, 70, 50))
    assert out["logits" if "logits" in out else "depth"].shape == (1, 1, 70, 50)
