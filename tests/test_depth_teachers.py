"""Real depth teachers from local files only: MiDaS v2.1 (two modes) and DPT / Depth Anything."""

from __future__ import annotations

import textwrap

import pytest
import timm
import torch

from dbd_lightning.distill.depth_teachers import MidasTeacher, midas_to_timm_resnet, renormalize
from dbd_lightning.train import run

from .helpers import TINY, compose_cfg


def _midas_state_from_timm(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A state dict in MiDaS v2.1 naming built from a timm ResNet (inverse of our mapping)."""
    out = {}
    for k, v in model.state_dict().items():
        for ours, theirs in (("conv1.", "layer1.0."), ("bn1.", "layer1.1."), ("layer1.", "layer1.4.")):
            if k.startswith(ours):
                k = theirs + k[len(ours):]
                break
        out["pretrained." + k] = v
    out["scratch.layer1_rn.weight"] = torch.zeros(1)  # decoder keys are ignored
    return out


def test_midas_key_mapping():
    state = {"pretrained.layer1.0.weight": 1, "pretrained.layer1.1.running_mean": 2,
             "pretrained.layer1.4.0.conv1.weight": 3, "pretrained.layer3.2.bn2.bias": 4, "scratch.x": 5}
    assert midas_to_timm_resnet(state) == {"conv1.weight": 1, "bn1.running_mean": 2, "layer1.0.conv1.weight": 3,
                                           "layer3.2.bn2.bias": 4}


def test_midas_encoder_only_teacher_loads_a_midas_file(tmp_path):
    ref = timm.create_model("resnet18", pretrained=False, features_only=True, out_indices=(1, 2, 3, 4)).eval()
    torch.save(_midas_state_from_timm(ref), tmp_path / "midas.pt")
    teacher = MidasTeacher(weights=str(tmp_path / "midas.pt"), encoder="resnet18", channels=[64, 128, 256, 512])
    x = torch.randn(1, 3, 64, 64)
    feats = teacher(x)["features"]
    with torch.no_grad():
        want = ref(x)
    assert all(torch.allclose(a, b) for a, b in zip(feats, want, strict=True))
    with pytest.raises(ValueError, match="channels"):
        MidasTeacher(weights=str(tmp_path / "midas.pt"), encoder="resnet18", channels=[1, 2, 3, 4])


HUBCONF = textwrap.dedent('''
    dependencies = ["torch"]
    import torch
    from torch import nn


    class TinyMidas(nn.Module):
        def __init__(self):
            super().__init__()
            self.pretrained = nn.Module()
            self.pretrained.layer1 = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.BatchNorm2d(8))
            self.pretrained.layer2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.pretrained.layer3 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
            self.pretrained.layer4 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
            self.head = nn.Conv2d(64, 1, 1)

        def forward(self, x):
            y = x
            for i in range(1, 5):
                y = getattr(self.pretrained, f"layer{i}")(y)
            return 10 * nn.functional.interpolate(self.head(y), size=x.shape[-2:])[:, 0]


    def MiDaS(pretrained=True, **kwargs):
        return TinyMidas()
''')


def test_midas_full_model_from_a_local_hub_dir(tmp_path):
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "hubconf.py").write_text(HUBCONF)
    teacher = MidasTeacher(hub_dir=str(tmp_path / "hub"))
    assert teacher.channels == [8, 16, 32, 64] and not teacher.training
    teacher.train()
    assert not any(m.training for m in teacher.modules())
    out = teacher(torch.randn(2, 3, 64, 64))
    assert [f.shape[-1] for f in out["features"]] == [16, 8, 4, 2]
    assert out["depth"].shape == (2, 1, 64, 64) and float(out["depth"].min()) >= 0 and float(out["depth"].max()) <= 1


def test_renormalize_is_identity_for_imagenet_and_maps_to_half_half():
    x = torch.randn(1, 3, 4, 4)
    assert renormalize(x, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) is x
    raw = x * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    assert torch.allclose(renormalize(x, (0.5,) * 3, (0.5,) * 3), (raw - 0.5) / 0.5, atol=1e-6)


@pytest.fixture
def tiny_dpt(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37,
                                 image_size=64, patch_size=16, backbone_out_indices=[0, 1, 2, 3],
                                 neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16)
    path = tmp_path / "dpt"
    transformers.DPTForDepthEstimation(cfg).save_pretrained(path)
    return path


def test_hf_depth_teacher_features_and_depth(tiny_dpt):
    from dbd_lightning.distill.depth_teachers import HFDepthTeacher

    teacher = HFDepthTeacher(str(tiny_dpt), input_size=64, channels=[16, 16, 16, 16])
    out = teacher(torch.randn(2, 3, 48, 48))
    assert [tuple(f.shape) for f in out["features"]] == [(2, 16, 16, 16), (2, 16, 8, 8), (2, 16, 4, 4), (2, 16, 2, 2)]
    assert out["depth"].shape == (2, 1, 48, 48)
    assert not any(p.requires_grad for p in teacher.parameters())


def test_stage2_with_a_dpt_depth_teacher_projects_student_to_teacher_channels(tmp_path, tiny_dpt):
    cfg = compose_cfg(tmp_path, ["experiment=ddffnet_stage2", "model=dffnet_small", "teacher/depth=hf",
                                 f"teacher.depth.path={tiny_dpt}", "teacher.depth.input_size=64",
                                 "teacher.depth.channels=[16,16,16,16]", "++trainer.fast_dev_run=true",
                                 "logger=none", "data=synthetic", *TINY])
    assert list(cfg.model.teachers.depth) == [16, 16, 16, 16]
    metrics = run(cfg)
    assert "train/feature_depth" in metrics and "test/synthetic/fbeta" in metrics
