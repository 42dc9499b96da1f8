"""Input sizes the encoder's stride does not divide: a clear ValueError (DFFNet family) or any size (the rest)."""

from __future__ import annotations

import importlib

import pytest
import torch

from dbd_lightning.models import registry
from dbd_lightning.models.components.input_size import InputSizeError, nearest_multiples


def _networks(size_rule: str) -> list:
    """Small instances' (class path, kwargs) of every paper network declared with ``size_rule`` (PAPER.networks)."""
    return [pytest.param(target, kwargs, id=target.rsplit(":", 1)[-1])
            for target, (kwargs, rule) in registry.networks().items() if rule == size_rule]


def _build(target: str, kwargs: dict):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def test_nearest_multiples():
    assert nearest_multiples(70, 32) == [64, 96]
    assert nearest_multiples(50, 32) == [32, 64]
    assert nearest_multiples(20, 32) == [32]


def test_every_paper_network_declares_its_input_size_rule():
    assert {t.rsplit(":", 1)[-1] for t in registry.networks()} >= {"DFFNet", "PDNet", "RDFFNet", "DDNet", "DepthNet",
                                                                   "BTBNet"}


@pytest.mark.parametrize(("target", "kwargs"), _networks("stride_multiple"))
def test_stride_networks_name_the_stride_and_the_nearest_sizes(target, kwargs):
    torch.manual_seed(0)
    net = _build(target, kwargs).eval()
    expected = r"70x50 .* stride 32 .* height 64 or 96, width 32 or 64 \(e\.g\. data\.image_size=\[64,64\]"
    with torch.no_grad(), pytest.raises(InputSizeError, match=expected) as info:
        net(torch.randn(1, 3, 70, 50))
    assert isinstance(info.value, ValueError)  # a ValueError, and a UserError for the entry points (exit 2)
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 96))["logits"].shape == (1, 1, 64, 96)
        # a size the encoder's ceil rounding makes fit still runs, as it did before the check
        assert net(torch.randn(1, 3, 61, 64))["logits"].shape == (1, 1, 61, 64)


@pytest.mark.parametrize(("target", "kwargs"), _networks("any"))
def test_nets_that_resize_between_levels_take_any_size(target, kwargs):
    with torch.no_grad():
        out = _build(target, kwargs).eval()(torch.randn(1, 3, 70, 50))
    assert out["logits" if "logits" in out else "depth"].shape == (1, 1, 70, 50)
