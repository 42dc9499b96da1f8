"""Converter from the authors' DFFNet / PDnet names (built here from their module names; unverified vs a real file)."""

from __future__ import annotations

import re

import torch

from dbd_lightning.convert import main
from dbd_lightning.models.ddffnet.convert import convert_dffnet_key
from dbd_lightning.models.ddffnet.teachers import DefocusTeacher
from dbd_lightning.models.dffnet import DFFNet
from dbd_lightning.models.pdnet import PDNet


def _authors_dffnet_names(ours: str) -> str:
    """Our DFFNet key -> the authors' name, written independently of the converter (inverse rules)."""
    k = ours
    if k.startswith("encoder.body."):
        k = "resnest." + k[len("encoder.body."):]
        return re.sub(r"^resnest\.layer([34])\.", r"resnest.layer\1_1.", k)
    m = re.match(r"^rfbs\.(\d)\.(.*)$", k)
    if m:
        lvl, rest = int(m[1]) + 1, m[2]
        rest = re.sub(r"^branches\.0\.0\.", "branch0.0.conv.", rest)
        rest = re.sub(r"^branches\.0\.1\.", "branch0.0.bn.", rest)
        rest = re.sub(r"^branches\.(\d)\.(\d)\.0\.", r"branch\1.\2.conv.", rest)
        rest = re.sub(r"^branches\.(\d)\.(\d)\.1\.", r"branch\1.\2.bn.", rest)
        rest = rest.replace("fuse.0.", "conv_cat.conv.").replace("fuse.1.", "conv_cat.bn.")
        rest = rest.replace("shortcut.0.", "conv_res.conv.").replace("shortcut.1.", "conv_res.bn.")
        return f"rfb{lvl}_1.{rest}"
    k = k.replace("decoder.", "agg1.")
    k = re.sub(r"^agg1\.cu(\d)\.0\.", r"agg1.conv_upsample\1.conv.", k)
    k = re.sub(r"^agg1\.cu(\d)\.1\.", r"agg1.conv_upsample\1.bn.", k)
    k = re.sub(r"^agg1\.fuse(\d)\.0\.", r"agg1.conv_concat\1.conv.", k)
    k = re.sub(r"^agg1\.fuse(\d)\.1\.", r"agg1.conv_concat\1.bn.", k)
    k = k.replace("agg1.head.0.0.", "agg1.conv4.conv.").replace("agg1.head.0.1.", "agg1.conv4.bn.")
    k = k.replace("agg1.head.1.", "agg1.conv5.")
    k = re.sub(r"^agg1\.side_heads\.(\d)\.", lambda m: f"agg1.side{int(m[1]) + 1}.", k)
    k = re.sub(r"^agg1\.attention\.(\d)\.conv\.", lambda m: f"agg1.spatial_attention{int(m[1]) + 1}.0.", k)
    return k


def test_dffnet_conversion_round_trip(tmp_path):
    torch.manual_seed(0)
    ours = DFFNet("resnet18")
    authors = {"module." + _authors_dffnet_names(k): v for k, v in ours.state_dict().items()}
    authors["module.resnest.layer3_2.0.conv1.weight"] = torch.zeros(1)  # unused branch
    authors["module.resnest.fc.weight"] = torch.zeros(1)
    assert "module.agg1.spatial_attention4.0.weight" in authors and "module.rfb4_1.branch3.3.bn.bias" in authors
    torch.save(authors, tmp_path / "dffnet.pth")
    assert main(["ddffnet", str(tmp_path / "dffnet.pth"), str(tmp_path / "ours.ckpt"), "--encoder", "resnet18"]) == 0
    teacher = DefocusTeacher(DFFNet("resnet18"), ckpt=str(tmp_path / "ours.ckpt"))
    for k, v in ours.state_dict().items():
        assert torch.equal(teacher.net.state_dict()[k], v), k
    assert convert_dffnet_key("resnest.layer4_2.0.bn1.weight") is None


def test_pdnet_conversion(tmp_path):
    ours = PDNet("resnet18")
    names = {"reduce.3.": "agg1.conv11.", "reduce.2.": "agg1.conv22.", "reduce.1.": "agg1.conv33.",
             "reduce.0.": "agg1.conv44.", "up1.0.": "agg1.conv_upsample4.conv.", "up1.1.": "agg1.conv_upsample4.bn.",
             "up2.0.": "agg1.conv_upsample5.conv.", "up2.1.": "agg1.conv_upsample5.bn.",
             "up3.0.": "agg1.conv_upsample7.conv.", "up3.1.": "agg1.conv_upsample7.bn.",
             "fuse2.0.": "agg1.conv_concat2.conv.", "fuse2.1.": "agg1.conv_concat2.bn.",
             "fuse3.0.": "agg1.conv_concat3.conv.", "fuse3.1.": "agg1.conv_concat3.bn.",
             "fuse4.0.": "agg1.conv_concat4.conv.", "fuse4.1.": "agg1.conv_concat4.bn.",
             "head.0.0.": "agg1.conv4.conv.", "head.0.1.": "agg1.conv4.bn.", "head.1.": "agg1.conv5."}
    authors = {}
    for k, v in ours.state_dict().items():
        if k.startswith("encoder.body."):
            new = re.sub(r"^layer([34])\.", r"layer\1_1.", k[len("encoder.body."):])
            authors["resnest." + new] = v
            continue
        prefix = next(p for p in names if k.startswith(p))
        authors[names[prefix] + k[len(prefix):]] = v
    authors["rfb1_1.branch0.0.conv.weight"] = torch.zeros(1)  # built but unused by their PDnet
    torch.save({"state_dict": authors}, tmp_path / "pdnet.pth")
    assert main(["pdnet", str(tmp_path / "pdnet.pth"), str(tmp_path / "ours.ckpt"), "--encoder", "resnet18"]) == 0


def test_mismatch_is_reported(tmp_path, capsys):
    torch.save({"agg1.conv5.weight": torch.zeros(1, 128, 1, 1)}, tmp_path / "bad.pth")
    assert main(["ddffnet", str(tmp_path / "bad.pth"), str(tmp_path / "x.ckpt"), "--encoder", "resnet18"]) == 1
    assert "missing" in capsys.readouterr().err
