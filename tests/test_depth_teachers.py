"""Real depth teachers from local files only: MiDaS v2.1 (two modes) and DPT / Depth Anything."""

from __future__ import annotations

import textwrap

import pytest
import timm
import torch
import torch.nn.functional as F

from dbd_lightning.models.ddffnet.depth_losses import minmax_normalize
from dbd_lightning.models.ddffnet.depth_teachers import MidasTeacher, midas_to_timm_resnet, renormalize
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


# --- DPT / Depth Anything (transformers): tiny random configs, saved to a local folder, loaded offline ---

IMAGE = 64  # the student sees 64x64: its four levels (strides 4..32) are 16, 8, 4, 2
STUDENT_LEVELS = [IMAGE // s for s in (4, 8, 16, 32)]
FUSION = 16  # fusion_hidden_size = the teacher's channels at every level
# input_size = 4 patches: the neck's reassembly factors 4, 2, 1, 1/2 give 16, 8, 4, 2 cells
HF_KINDS = {"dpt": 64, "depth_anything": 56}  # patch 16 / patch 14


def _tiny_hf_model(kind: str):
    transformers = pytest.importorskip("transformers")
    if kind == "dpt":
        cfg = transformers.DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37,
                                     image_size=64, patch_size=16, backbone_out_indices=[0, 1, 2, 3],
                                     neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=FUSION, head_in_index=-1)
        return transformers.DPTForDepthEstimation(cfg)
    backbone = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, mlp_ratio=1,
                                         image_size=56, patch_size=14, out_indices=[1, 2, 3, 4],
                                         reshape_hidden_states=False)
    cfg = transformers.DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=32,
                                           neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=FUSION,
                                           head_hidden_size=8)
    return transformers.DepthAnythingForDepthEstimation(cfg)


@pytest.fixture(scope="module", params=list(HF_KINDS))
def hf_depth(request, tmp_path_factory):
    """(kind, folder, input_size, reference model): a tiny model written by ``save_pretrained``."""
    torch.manual_seed(0)
    model = _tiny_hf_model(request.param).eval()
    path = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(path)
    return request.param, path, HF_KINDS[request.param], model


@pytest.fixture(autouse=True)
def _hub_offline(monkeypatch):
    """No hub access whatever the caller's environment says (the teacher also passes local_files_only)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)


def test_hf_depth_teacher_loads_the_local_folder_features_and_depth(hf_depth):
    from dbd_lightning.models.ddffnet.depth_teachers import HFDepthTeacher

    kind, path, input_size, ref = hf_depth
    teacher = HFDepthTeacher(str(path), input_size=input_size, channels=[FUSION] * 4)
    assert type(teacher.model).__name__ == type(ref).__name__ and teacher.channels == [FUSION] * 4
    want = ref.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in teacher.model.state_dict().items())  # the saved weights
    # frozen: eval mode for good, no trainable parameter, no graph even for an input that needs grad
    teacher.train()
    assert not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    image = torch.randn(2, 3, IMAGE, IMAGE, requires_grad=True)
    out = teacher(image)
    assert [tuple(f.shape) for f in out["features"]] == [(2, FUSION, n, n) for n in STUDENT_LEVELS]
    assert not any(f.requires_grad for f in out["features"]) and not out["depth"].requires_grad
    assert out["depth"].shape == (2, 1, IMAGE, IMAGE)
    assert float(out["depth"].min()) >= 0 and float(out["depth"].max()) <= 1
    # the reference model's depth for the same (resized) input, back at the image's size
    with torch.no_grad():
        ref_depth = ref(pixel_values=F.interpolate(image, size=(input_size, input_size), mode="bilinear")).predicted_depth
    ref_depth = F.interpolate(ref_depth[:, None], size=(IMAGE, IMAGE), mode="bilinear")
    assert torch.allclose(out["depth"], minmax_normalize(ref_depth), atol=1e-5)
    # another image size: the teacher still sees input_size; depth comes back at the image's size
    out = teacher(torch.randn(1, 3, 48, 80))
    assert [f.shape[-2:] for f in out["features"]] == [(n, n) for n in STUDENT_LEVELS]
    assert out["depth"].shape == (1, 1, 48, 80)
    with pytest.raises(ValueError, match="channels"):
        HFDepthTeacher(str(path), input_size=input_size, channels=[256] * 4)


def test_hf_depth_teacher_loads_a_float16_folder_in_float32(tmp_path):
    """transformers 5 defaults to dtype="auto" (the folder's dtype); the teacher asks for float32."""
    from dbd_lightning.models.ddffnet.depth_teachers import HFDepthTeacher

    _tiny_hf_model("dpt").half().save_pretrained(tmp_path / "fp16")
    teacher = HFDepthTeacher(str(tmp_path / "fp16"), input_size=64)
    assert {p.dtype for p in teacher.parameters()} == {torch.float32}
    out = teacher(torch.randn(1, 3, 32, 32))
    assert out["depth"].dtype == torch.float32 and out["depth"].shape == (1, 1, 32, 32)
    with pytest.raises(FileNotFoundError):
        HFDepthTeacher(str(tmp_path / "missing"))


def test_stage2_with_a_hf_depth_teacher_projects_student_to_teacher_channels(tmp_path, hf_depth):
    _kind, path, input_size, _ref = hf_depth
    cfg = compose_cfg(tmp_path, ["experiment=ddffnet_stage2", "model=dffnet_small", "teacher/depth=hf",
                                 f"teacher.depth.path={path}", f"teacher.depth.input_size={input_size}",
                                 f"teacher.depth.channels=[{FUSION},{FUSION},{FUSION},{FUSION}]",
                                 "++trainer.fast_dev_run=true", "logger=none", "data=synthetic", *TINY])
    assert list(cfg.model.teachers.depth) == [FUSION] * 4
    metrics = run(cfg)
    assert "train/feature_depth" in metrics and "test/synthetic/fbeta" in metrics
