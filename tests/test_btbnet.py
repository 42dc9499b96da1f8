"""BTBNet family: shapes at every scale set, RRNet weight sharing, gradients, FFIC wiring, recipe pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dbd_lightning.models.btbnet import BTBNet, MapRefiner, TopBottom, VGGTrunk
from dbd_lightning.models.btbnet.torch_model import scaled_size

SMALL = dict(widths=[4, 8, 8, 16, 16], ffic_channels=[8, 8, 4, 1], fnet_channels=[8, 8, 8, 1],
             rrnet_channels=[8, 8, 8, 1])
SCALE_SETS = [[1.0], [1.0, 0.8], [1.0, 0.8, 0.6], [1.0, 0.8, 0.6, 0.4]]


@pytest.mark.parametrize("scales", SCALE_SETS)
@pytest.mark.parametrize("size", [(32, 32), (37, 50)])
def test_output_resolution_equals_input_for_every_scale_set(scales, size):
    torch.manual_seed(0)
    fusion = "none" if len(scales) == 1 else "fnet"
    net = BTBNet(scales=scales, fusion=fusion, **SMALL)
    out = net(torch.randn(2, 3, *size))
    assert out["logits"].shape == (2, 1, *size)
    assert len(out["side_logits"]) == len(scales) and len(net.streams) == len(scales)
    assert all(s.shape == (2, 1, *size) for s in out["side_logits"])


# scales of the paper and Table 2, a tie-prone one (0.5: odd sizes round half to even), inexact ones
SIZE_SCALES = [1.0, 0.8, 0.6, 0.4, 0.5, 0.7, 0.75, 0.9, 0.3, 1.3, 2.5]


def _eager_formula(h, w, s):  # the stream size as BTBNet has always computed it (Python round, half to even)
    return max(1, round(s * h)), max(1, round(s * w))


@pytest.mark.parametrize("s", SIZE_SCALES)
def test_scaled_size_tensor_path_gives_the_eager_sizes(s):
    # 0-dim tensors are what torch.jit.trace / the ONNX exporter hand the model for x.shape
    for h in range(1, 131):
        w = 148 - h
        want = _eager_formula(h, w, s)
        assert scaled_size(h, w, s) == want
        got = scaled_size(torch.tensor(h), torch.tensor(w), s)
        assert all(isinstance(v, torch.Tensor) and v.dtype == torch.int64 for v in got)
        assert (int(got[0]), int(got[1])) == want, (h, w, s)


def test_traced_stream_sizes_follow_the_input_size():
    # the traced graph recomputes the sizes from the runtime shape (no example size frozen in)
    def sizes(x):
        return torch.stack([torch.stack(scaled_size(*x.shape[-2:], s)) for s in SIZE_SCALES])

    traced = torch.jit.trace(sizes, torch.empty(1, 1, 64, 64), check_trace=False)
    for h in range(17, 131):
        w = 147 - h
        got = traced(torch.empty(1, 1, h, w)).tolist()
        assert got == [list(_eager_formula(h, w, s)) for s in SIZE_SCALES], (h, w)


class _Logits(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["logits"]


def test_traced_btbnet_matches_eager_on_other_sizes():
    torch.manual_seed(0)
    for kw in ({}, {"align_corners": True, "share_streams": True, "map_input": "prob"}):
        net = BTBNet(scales=[1.0, 0.8, 0.6], **kw, **SMALL).eval()
        with torch.no_grad():
            traced = torch.jit.trace(_Logits(net), torch.randn(1, 3, 32, 32), check_trace=False)
            for size in [(17, 23), (37, 50), (41, 29)]:
                x = torch.randn(2, 3, *size)
                torch.testing.assert_close(traced(x), net(x)["logits"], atol=1e-5, rtol=0)


def test_trunk_keeps_full_resolution_and_vgg16_layout():
    trunk = VGGTrunk()
    feats = trunk(torch.randn(1, 3, 9, 11))
    assert [f.shape[1:] for f in feats] == [(c, 9, 11) for c in (64, 128, 256, 512, 512)]
    assert not any(isinstance(m, nn.MaxPool2d | nn.Linear) for m in trunk.modules())
    assert len(trunk.convs()) == 13 and sum(p.numel() for p in trunk.parameters()) == 14_714_688  # VGG16 convs


def test_stream_maps_are_each_streams_output_at_its_scale_resized_back():
    torch.manual_seed(0)
    net = BTBNet(scales=[1.0, 0.5], **SMALL)
    x = torch.randn(1, 3, 16, 24)
    maps = net.stream_maps(x)
    small = nn.functional.interpolate(x, size=(8, 12), mode="bilinear", align_corners=False)
    expect = nn.functional.interpolate(net.streams[1](small), size=(16, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close(maps[1], expect)
    torch.testing.assert_close(maps[0], net.streams[0](x))
    assert net.streams[0] is not net.streams[1]


def test_rrnet_is_one_parameter_set_applied_three_times():
    torch.manual_seed(0)
    net = BTBNet(scales=[1.0, 0.8], rrnet_steps=3, **SMALL)
    rr = [m for n, m in net.named_modules() if isinstance(m, MapRefiner)]
    assert len(rr) == 2  # FNet + one RRNet, never three RRNet copies
    calls = []
    net.rrnet.register_forward_hook(lambda m, i, o: calls.append((i[0].detach().clone(), o.detach().clone())))
    x = torch.randn(1, 3, 16, 16)
    out = net(x)
    assert len(calls) == 3
    # each step's input map is the previous step's output (eq. 5), the first one FNet's map
    fused = net.fnet(torch.cat(net.stream_maps(x), 1), x)
    torch.testing.assert_close(calls[0][0], fused)
    torch.testing.assert_close(calls[1][0], calls[0][1])
    torch.testing.assert_close(calls[2][0], calls[1][1])
    torch.testing.assert_close(out["logits"], calls[2][1])
    # gradient of the shared weights sums the contributions of the three applications
    out["logits"].sum().backward()
    assert net.rrnet.body[0].weight.grad is not None and net.rrnet.body[0].weight.grad.abs().sum() > 0


def test_gradients_reach_every_stream_and_every_parameter():
    from dbd_lightning.losses.detection import DeepSupervisionLoss

    torch.manual_seed(0)
    net = BTBNet(scales=[1.0, 0.8, 0.6], **SMALL)
    x = torch.randn(2, 3, 20, 20)
    mask = (torch.rand(2, 1, 20, 20) > 0.5).float()
    out = net(x)
    # main loss alone already reaches every stream (through FNet / RRNet)
    out["logits"].sum().backward(retain_graph=True)
    for n, s in enumerate(net.streams):
        g = s.trunk.convs()[0].weight.grad
        assert g is not None and g.abs().sum() > 0, f"stream {n} gets no gradient from the main map"
    net.zero_grad()
    DeepSupervisionLoss(edge_weight=0.0)(out, {"mask": mask})["loss"].backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead


def test_ffic_adds_feedback_and_forward_convs_step_by_step():
    torch.manual_seed(0)
    tb = TopBottom([2, 3, 4], channels=[5, 1])
    feats = [torch.randn(1, c, 6, 6) for c in (2, 3, 4)]
    x1 = torch.relu(tb.feedback[0](feats[2])) + torch.relu(tb.forward_convs[0](feats[1]))
    x2 = tb.feedback[1](x1) + tb.forward_convs[1](feats[0])  # last step linear (final_relu=False)
    torch.testing.assert_close(tb(feats), x2)
    tb.final_relu = True
    assert (tb(feats) >= 0).all()
    with pytest.raises(ValueError, match="blocks - 1"):
        TopBottom([2, 3, 4], channels=[5, 4, 1])
    with pytest.raises(ValueError, match="must be 1"):
        TopBottom([2, 3, 4], channels=[5, 2])


def test_fnet_and_rrnet_shapes_are_the_papers():
    net = BTBNet(scales=[1.0, 0.8, 0.6])
    convs = [m for m in net.fnet.body if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (6, 64, (3, 3)), (64, 128, (3, 3)), (128, 64, (3, 3)), (64, 1, (3, 3))]
    rr = [m for m in net.rrnet.body if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in rr] == [(4, 64), (64, 128), (128, 64), (64, 1)]
    assert sum(isinstance(m, nn.ReLU) for m in net.fnet.body) == 3  # ReLU between, linear last (eq. 3-4)
    ffic = net.streams[0].head
    assert [c.out_channels for c in ffic.feedback] == [256, 128, 64, 1]
    assert [c.in_channels for c in ffic.forward_convs] == [512, 256, 128, 64]


def test_variants_vggfc_and_1s_have_no_extra_heads():
    fc = BTBNet(scales=[1.0], fusion="none", rrnet_steps=0, top_bottom=False, **SMALL)
    out = fc(torch.randn(1, 3, 8, 8))
    assert fc.fnet is None and fc.rrnet is None and out["side_logits"] == []
    assert not any(isinstance(m, TopBottom) for m in fc.modules())
    one = BTBNet(scales=[1.0], fusion="none", rrnet_steps=0, **SMALL)
    assert one(torch.randn(1, 3, 8, 8))["side_logits"] == []


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ValueError, match="fusion='none' needs exactly one scale"):
        BTBNet(scales=[1.0, 0.8], fusion="none", **SMALL)
    with pytest.raises(ValueError, match="scales"):
        BTBNet(scales=[], **SMALL)
    with pytest.raises(ValueError, match="map_input"):
        BTBNet(map_input="x", **SMALL)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        BTBNet(**SMALL)(torch.randn(3, 8, 8))


def test_map_input_prob_feeds_sigmoid_maps():
    torch.manual_seed(0)
    net = BTBNet(scales=[1.0, 0.8], map_input="prob", rrnet_steps=1, **SMALL)
    seen = []
    net.fnet.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    net(torch.randn(1, 3, 8, 8))
    assert seen[0].min() >= 0 and seen[0].max() <= 1


def test_vgg16_imagenet_weights_load_from_a_torchvision_layout_state_dict(tmp_path):
    # torchvision's vgg16().features layout (importing torchvision costs ~15 s here): convs at indices
    # 0 2 | 5 7 | 10 12 14 | 17 19 21 | 24 26 28, ReLU after each, max-pool at 4 9 16 23 30
    layers, cin = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        layers += [nn.MaxPool2d(2)] if v == "M" else [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
        cin = cin if v == "M" else v
    ref = nn.Sequential(*layers)
    assert [i for i, m in enumerate(ref) if isinstance(m, nn.Conv2d)] == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    torch.save({f"features.{k}": v for k, v in ref.state_dict().items()}, tmp_path / "vgg16.pth")
    net = BTBNet(scales=[1.0], fusion="none", rrnet_steps=0, weights_file=str(tmp_path / "vgg16.pth"))
    ref_convs = [m for m in ref if isinstance(m, nn.Conv2d)]
    for mine, theirs in zip(net.streams[0].trunk.convs(), ref_convs, strict=True):
        torch.testing.assert_close(mine.weight, theirs.weight)
        torch.testing.assert_close(mine.bias, theirs.bias)
    # without pooling, block 1 of the trunk equals torchvision's first two convs + ReLUs exactly
    x = torch.randn(1, 3, 12, 12)
    torch.testing.assert_close(net.streams[0].trunk(x)[0], ref[:4](x))
    with pytest.raises(ValueError, match="paper widths|conv layers"):
        BTBNet(scales=[1.0], fusion="none", weights_file=str(tmp_path / "vgg16.pth"), **SMALL)


def test_init_ckpt_loads_a_lightning_style_checkpoint(tmp_path):
    torch.manual_seed(0)
    a = BTBNet(scales=[1.0, 0.8], **SMALL)
    torch.save({"state_dict": {f"net.{k}": v for k, v in a.state_dict().items()}}, tmp_path / "a.ckpt")
    torch.manual_seed(1)
    b = BTBNet(scales=[1.0, 0.8], init_ckpt=str(tmp_path / "a.ckpt"), **SMALL)
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(a(x)["logits"], b(x)["logits"])


def test_tiny_overfit_loss_decreases():
    from dbd_lightning.losses.detection import DeepSupervisionLoss

    torch.manual_seed(0)
    net = BTBNet(scales=[1.0, 0.8], rrnet_steps=1, **SMALL)
    x = torch.randn(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., :8] = 1.0
    x[..., :8] += 1.0
    loss_fn = DeepSupervisionLoss(edge_weight=0.0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = loss_fn(net(x), {"mask": mask})["loss"]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


# --------------------------------------------------------------------------- recipe pieces
def test_param_groups_split_backbone_and_new_layers():
    from dbd_lightning.utils.param_groups import build_param_groups

    net = BTBNet(scales=[1.0, 0.8], **SMALL)
    groups = build_param_groups(net.named_parameters(), [{"match": "streams.*.trunk.*", "lr": 1e-4}])
    trunk = {id(p) for s in net.streams for p in s.trunk.parameters()}
    assert {id(p) for p in groups[0]["params"]} == trunk and groups[0]["lr"] == 1e-4
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in net.parameters()} - trunk
    assert "lr" not in groups[1]
    opt = torch.optim.SGD(groups, lr=1e-3, momentum=0.9, weight_decay=5e-4)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-3]
    with pytest.raises(ValueError, match="matches no trainable parameter"):
        build_param_groups(net.named_parameters(), [{"match": "encoder.*", "lr": 1e-4}])
    with pytest.raises(ValueError, match="needs a 'match'"):
        build_param_groups(net.named_parameters(), [{"lr": 1e-4}])


def test_detection_task_builds_param_groups_from_config(tmp_path):
    from dbd_lightning.runs.task_builder import build_task

    from .helpers import TINY, compose_cfg

    cfg = compose_cfg(tmp_path, ["experiment=btbnet_paper", "data=synthetic", *TINY,
                                 "model.net.widths=[4,8,8,16,16]", "model.net.ffic_channels=[8,8,4,1]"])
    opt = build_task(cfg).configure_optimizers()
    assert isinstance(opt, torch.optim.SGD)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-3]
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 5e-4 for g in opt.param_groups)
    assert cfg.loss.side_weights == 1.0 and cfg.model.net.rrnet_steps == 3


def test_pretrain_dataset_enumerates_the_20_variants_per_source():
    from dbd_lightning.models.btbnet.pretrain_data import BTBNetPretrainDataset

    ds = BTBNetPretrainDataset(length=40, seed=0, size=24)
    got = [(ds[i]["times"], ds[i]["position"]) for i in range(20)]
    assert len(set(got)) == 20 and {t for t, _ in got} == {1, 2, 3, 4, 5}
    a, b = ds[0], ds[7]  # same source, different variant: the sharp half is identical
    assert a["mask"].mean() == 0.5
    sharp = (a["mask"] == 1) & (b["mask"] == 1)
    assert sharp.any() and np.array_equal(a["image"][sharp], b["image"][sharp])
    assert not np.array_equal(ds[0]["image"], ds[20]["image"])  # next source
    np.testing.assert_array_equal(ds[5]["image"], BTBNetPretrainDataset(length=40, seed=0, size=24)[5]["image"])


def test_orientations16_rotates_and_flips_image_and_mask_together():
    from dbd_lightning.data.orientations import Orientations16, inscribed_size, orient

    img = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    mask = np.zeros((6, 8), np.uint8)
    mask[:, :3] = 1

    class Base(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"image": img, "mask": mask, "name": f"s{i}"}

    ds = Orientations16(Base())
    assert len(ds) == 32 and ds[17]["name"] == "s1_o1"
    np.testing.assert_array_equal(ds[2]["image"], np.rot90(img, 1))      # 90 degrees
    np.testing.assert_array_equal(ds[2]["mask"], np.rot90(mask, 1))
    np.testing.assert_array_equal(ds[12]["mask"], np.rot90(mask, 2)[:, ::-1])  # 180 + flip
    diag = ds[1]
    assert diag["image"].shape[:2] == diag["mask"].shape == inscribed_size(6, 8, 45)
    assert set(np.unique(diag["mask"])) <= {0, 1}
    assert inscribed_size(100, 100, 45) == (70, 70) and inscribed_size(10, 20, 0) == (10, 20)
    assert len(Orientations16(Base(), enabled=False)) == 2
    with pytest.raises(ValueError, match="0..15"):
        orient(img, 16)


def test_btbnet_metric_preset_is_adaptive_average_prf():
    from dbd_lightning.metrics import build_dbd_metrics

    pred = torch.tensor([[0.9, 0.8], [0.1, 0.2]])  # in-focus probability; blur map = 1 - pred
    gt = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    m = build_dbd_metrics(preset="btbnet", precision_recall=True, pr_curve=True)
    m.update([pred], [gt])
    r = m.compute()
    # blur map (0.1, 0.2, 0.9, 0.8), mean 0.5, threshold 0.75 -> predicted blur at (1,0), (1,1)
    # blur GT = (0, 1, 1, 1): TP 2, FP 0, FN 1 -> P 1, R 2/3, F = 1.3 * 2/3 / (0.3 + 2/3)
    assert r["precision"].item() == pytest.approx(1.0)
    assert r["recall"].item() == pytest.approx(2 / 3)
    assert r["fbeta"].item() == pytest.approx(1.3 * (2 / 3) / (0.3 + 2 / 3), rel=1e-5)
    prec, rec, thr = r["pr_curve"]
    assert prec.shape == rec.shape == thr.shape == (256,)


def test_btbnet_pretrain_sample():
    """Sec. 4.1 recipe: one half blurred by the 7x7 sigma-2 Gaussian applied ``times`` times, the other untouched."""
    from dbd_lightning.data.synthetic.textures import TextureBank
    from dbd_lightning.models.btbnet.pretrain_data import btbnet_pretrain_sample, btbnet_pretrain_variants
    from dbd_lightning.ops.psf import blur, gaussian_kernel

    src = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    s = btbnet_pretrain_sample(np.random.default_rng(0), src, size=None, times=2, position="left")
    assert s["image"].shape == src.shape and s["image"].dtype == np.uint8
    assert np.all(s["mask"][:, :30] == 0) and np.all(s["mask"][:, 30:] == 1)
    np.testing.assert_array_equal(s["image"][:, 30:], src[:, 30:])  # sharp half untouched
    k = gaussian_kernel(2.0, 3)
    twice = blur(blur(src.astype(np.float32) / 255, k), k)
    expected = np.clip(twice[:, :30] * 255 + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(s["image"][:, :30].astype(int) - expected).max() <= 1
    variants = list(btbnet_pretrain_variants(src))
    assert len(variants) == 20
    assert {(v["times"], v["position"]) for v in variants} == {
        (t, p) for t in range(1, 6) for p in ("left", "right", "top", "bottom")
    }
    bottom = btbnet_pretrain_sample(np.random.default_rng(1), TextureBank(), size=32, position="bottom")
    assert bottom["mask"][:16].all() and not bottom["mask"][16:].any()
    with pytest.raises(ValueError, match="left, right, top, bottom"):
        btbnet_pretrain_sample(np.random.default_rng(0), src, size=None, position="middle")
