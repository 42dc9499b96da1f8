import pytest
import timm
import torch

from dbd_lightning.models.components.rfb import RFB
from dbd_lightning.models.dffnet import DFFNet


@pytest.fixture(scope="module")
def small_net():
    return DFFNet("resnet18")


def test_output_shapes_and_strides(small_net):
    x = torch.randn(2, 3, 96, 128)
    out = small_net(x)
    assert out["logits"].shape == (2, 1, 96, 128)
    sides = [tuple(s.shape[-2:]) for s in out["side_logits"]]
    assert sides == [(6, 8), (6, 8), (12, 16), (24, 32)]  # strides 16, 16, 8, 4
    assert [f.shape[1] for f in out["features"]] == [64, 128, 256, 512]
    assert [f.shape[-1] for f in out["features"]] == [32, 16, 8, 4]


def test_paper_decoder_size_and_no_unused_parameters():
    net = DFFNet("resnest101e")
    decoder = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("encoder."))
    # ddffnet.md: "Decoder (4 RFB + DFFM) ~1.58 M parameters"
    assert 1_575_000 < decoder < 1_590_000
    assert net.encoder.channels == [256, 512, 1024, 2048]
    # the authors' model builds a 44.5 M-parameter branch it never uses; timm features_only builds no head
    encoder = sum(p.numel() for p in net.encoder.parameters())
    full = sum(p.numel() for p in timm.create_model("resnest101e", pretrained=False).parameters())
    assert full - encoder == 2048 * 1000 + 1000  # exactly the classifier is left out


def test_rfb_branch_structure():
    rfb = RFB(16, 32)
    kernels = [[m.kernel_size for m in b.modules() if isinstance(m, torch.nn.Conv2d)] for b in rfb.branches]
    assert kernels[0] == [(1, 1)]
    assert kernels[1] == [(1, 1), (1, 3), (3, 1), (3, 3)]
    assert kernels[3] == [(1, 1), (1, 7), (7, 1), (3, 3)]
    dil = [m.dilation for m in rfb.branches[2].modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert dil == (5, 5)
    assert all(m.bias is None for m in rfb.modules() if isinstance(m, torch.nn.Conv2d))
    y = rfb(torch.randn(1, 16, 10, 10))
    assert y.shape == (1, 32, 10, 10) and (y >= 0).all()  # ReLU(residual sum)


def test_every_parameter_gets_a_gradient(small_net):
    small_net.zero_grad()
    out = small_net(torch.randn(2, 3, 64, 64))
    loss = out["logits"].mean() + sum(s.mean() for s in out["side_logits"])
    loss.backward()
    no_grad = [n for n, p in small_net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert no_grad == []
    assert small_net.encoder.body.conv1.weight.grad.abs().sum() > 0


def test_ablation_switch_attention():
    """``attention=False`` removes exactly the SABs: same weights otherwise, a different output, and
    the attended net with its SABs bypassed gives the ablated net's output."""

    class Bypass(torch.nn.Module):
        def forward(self, g, side):
            return g

    torch.manual_seed(0)
    full = DFFNet("resnet18", attention=True).eval()
    net = DFFNet("resnet18", attention=False).eval()
    assert net.decoder.attention is None
    missing, unexpected = net.load_state_dict(full.state_dict(), strict=False)
    assert missing == [] and unexpected and all(k.startswith("decoder.attention.") for k in unexpected)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ablated, attended = net(x)["logits"], full(x)["logits"]
        assert ablated.shape == (1, 1, 64, 64)
        # the switch changes the output (by ~3 % of the logits at this init; float32 noise is ~1e-9)
        assert (ablated - attended).abs().max() > 1e-5
        full.decoder.attention = torch.nn.ModuleList([Bypass() for _ in range(4)])
        torch.testing.assert_close(full(x)["logits"], ablated, rtol=1e-5, atol=1e-7)


def _up(x: torch.Tensor, times: int) -> torch.Tensor:
    """Bilinear x2 (align_corners=True), ``times`` times."""
    for _ in range(times):
        x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    return x


def test_dense_guidance_is_the_papers_products_and_its_ablation_removes_them():
    """DFFM branches (Sec. III-A): g2 = CU1(up f1) f2, g3 = CU2(up^2 f1) CU3(up f2) f3,
    g4 = CU2(up^3 f1) CU3(up^2 f2) CU6(up f3) f4 (up = bilinear x2, align_corners); the
    "w/o DFFM" ablation (Table VI) keeps g_k = f_k, so the deepest level no longer reaches them."""
    from dbd_lightning.models.components.dffm import DFFM

    torch.manual_seed(0)
    c = 4
    f1, f2, f3, f4 = (torch.randn(1, c, s, s, dtype=torch.float64) for s in (2, 4, 8, 16))
    dense = DFFM(c, attention=False, dense_guidance=True).double().eval()
    plain = DFFM(c, attention=False, dense_guidance=False).double().eval()
    plain.load_state_dict(dense.state_dict())
    with torch.no_grad():
        _, _, feats = dense.forward_with_features(f1, f2, f3, f4)
        g1, g2, g3, g4 = feats["branches"]
        torch.testing.assert_close(g2, dense.cu1(_up(f1, 1)) * f2)
        torch.testing.assert_close(g3, dense.cu2(_up(f1, 2)) * dense.cu3(_up(f2, 1)) * f3)
        torch.testing.assert_close(g4, dense.cu2(_up(f1, 3)) * dense.cu3(_up(f2, 2)) * dense.cu6(_up(f3, 1)) * f4)
        torch.testing.assert_close(g1, dense.cu4(_up(f1, 1)))
        _, sides, feats = plain.forward_with_features(f1, f2, f3, f4)
        assert [torch.equal(a, b) for a, b in zip(feats["branches"][1:], (f2, f3, f4), strict=True)] == [True] * 3
        # changing f1 moves every guided side map, and none of the ablation's g2..g4 side maps
        f1b = f1 + 1.0
        dense_sides = dense(f1, f2, f3, f4)[1], dense(f1b, f2, f3, f4)[1]
        plain_sides = sides, plain(f1b, f2, f3, f4)[1]
    assert all(not torch.allclose(a, b) for a, b in zip(*dense_sides, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(plain_sides[0][1:], plain_sides[1][1:], strict=True))
    assert not torch.allclose(plain_sides[0][0], plain_sides[1][0])  # g1 = CU4(up f1) still sees f1


def test_bad_encoder_and_offline_pretrained(monkeypatch):
    with pytest.raises(ValueError, match="Unknown timm encoder 'resnet1800'"):
        DFFNet("resnet1800")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="weights_file"):
        DFFNet("resnet18", pretrained=True)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        DFFNet("resnet18", weights_file="/nope.pth")


def test_local_weights_file_is_loaded(tmp_path):
    reference = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    net = DFFNet("resnet18", weights_file=str(path))
    assert torch.equal(net.encoder.body.conv1.weight, reference.conv1.weight)
    assert torch.equal(net.encoder.body.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_encoder_levels_must_be_strides_4_to_32():
    with pytest.raises(ValueError, match=r"strides \[4, 8, 16, 32\]"):
        DFFNet("resnet18", out_indices=(0, 1, 2, 3))


@pytest.mark.parametrize("cls_name", ["DFFNet", "RDFFNet"])
def test_channels_last_decoder_is_the_same_network(cls_name):
    from dbd_lightning.models.rdffnet import RDFFNet

    cls = {"DFFNet": DFFNet, "RDFFNet": RDFFNet}[cls_name]
    torch.manual_seed(0)
    ref = cls("resnet18").eval()
    net = cls("resnet18", channels_last_decoder=True).eval()
    assert list(net.state_dict()) == list(ref.state_dict())  # checkpoints interchange
    net.load_state_dict(ref.state_dict())
    def conv3x3(model):
        return next(m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))

    assert conv3x3(net).weight.is_contiguous(memory_format=torch.channels_last)  # still after loading
    assert not conv3x3(ref).weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        a, b = ref(x), net(x)
    assert b["logits"].is_contiguous()
    torch.testing.assert_close(b["logits"], a["logits"], rtol=1e-4, atol=1e-5)
    for sa, sb in zip(a["side_logits"], b["side_logits"], strict=True):
        torch.testing.assert_close(sb, sa, rtol=1e-4, atol=1e-5)
    if "depth" in a:
        torch.testing.assert_close(b["depth"], a["depth"], rtol=1e-4, atol=1e-5)
    # trains: gradients reach the decoder in both layouts
    net.train()
    net(x)["logits"].mean().backward()
    assert net.decoder.head[-1].weight.grad is not None
