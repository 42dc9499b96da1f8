"""The shipped adapted releases (``adapt``: AdaBN, TENT) keep what their cards say they keep.

``zoo:dffnet_lite0_synth_adabn`` changes only the BatchNorm running statistics of ``zoo:dffnet_lite0_synth``;
``zoo:dffnet_lite0_synth_tent`` and ``zoo:dffnet_lite2_synth_selftrain_tent_sam`` (TENT with SAR's sharpness-aware
step on ``zoo:dffnet_lite2_synth_selftrain_tent``) change the BatchNorm scales, shifts and statistics. Every other
tensor (every convolution and linear weight) must be the source model's, bit for bit. ``zoo:dffnet_lite2_synth_tent``
was adapted from a run that is not released: its record must still name the layers it adapted.
"""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import load_file

from dbd_lightning.runs.released import WEIGHTS_DIR, resolve_zoo, training_data, zoo_names

#: each release's record (the file's metadata), read once
RECORDS = {n: resolve_zoo(n).metadata() for n in zoo_names()}
ADAPTED = [n for n, record in RECORDS.items() if "adapted_from" in record]
FROM_ZOO = [n for n in ADAPTED if RECORDS[n]["adapted_from"].startswith("zoo:")]


def _encoder(record: dict) -> str:
    return record["config"]["model"]["net"]["encoder"]


def _batchnorm_prefixes(state: dict[str, torch.Tensor]) -> set[str]:
    return {k[: -len("running_mean")] for k in state if k.endswith("running_mean")}


def test_the_adapted_releases_are_found():
    assert {"dffnet_lite0_synth_adabn", "dffnet_lite0_synth_tent"} <= set(FROM_ZOO)
    assert {"dffnet_lite2_synth_tent", "dffnet_lite2_synth_selftrain_tent"} <= set(ADAPTED)
    assert "dffnet_lite2_synth_selftrain_tent_sam" in FROM_ZOO


@pytest.mark.parametrize("name", ADAPTED)
def test_an_adapted_release_names_its_batchnorm_layers(name):
    """The record's layer count is the file's number of BatchNorm layers; the card states no real mask."""
    layers = int(re.search(r"BatchNorm statistics \((\d+) layers\)", RECORDS[name]["adapted"]).group(1))
    assert layers == len(_batchnorm_prefixes(load_file(WEIGHTS_DIR / f"{name}.safetensors")))
    assert "no real mask" in training_data(name)


@pytest.mark.parametrize("name", FROM_ZOO)
def test_an_adapted_release_changes_batchnorm_tensors_only(name):
    meta = RECORDS[name]
    source = meta["adapted_from"].removeprefix("zoo:")
    adapted, original = load_file(WEIGHTS_DIR / f"{name}.safetensors"), load_file(WEIGHTS_DIR / f"{source}.safetensors")
    assert set(adapted) == set(original)
    bn = _batchnorm_prefixes(original)
    layers = int(re.search(r"BatchNorm statistics \((\d+) layers\)", meta["adapted"]).group(1))
    assert len(bn) == layers == {"efficientnet_lite0": 119, "efficientnet_lite2": 134}[_encoder(meta)]
    tent = "TENT" in meta["adapted"]
    changed = {"statistics": 0, "affine": 0}
    for key, value in original.items():
        prefix, leaf = key.rsplit(".", 1)[0] + ".", key.rsplit(".", 1)[1]
        same = torch.equal(adapted[key], value)
        if prefix not in bn:
            assert same, f"{name}: {key} is not a BatchNorm statistic or affine tensor, yet it changed"
        elif leaf == "num_batches_tracked":  # a counter of the batches AdaBN averaged: no eval-mode forward reads it
            continue
        elif leaf in ("running_mean", "running_var"):
            changed["statistics"] += not same
        else:  # weight / bias of a BatchNorm layer: TENT's parameters, AdaBN's never
            assert tent or same, f"{name}: AdaBN changed {key}"
            changed["affine"] += not same
    assert changed["statistics"] >= 2 * layers * 0.9  # (nearly) every layer's statistics are the photos'
    assert (changed["affine"] > 0) == tent
