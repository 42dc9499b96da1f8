"""DDNet (Cun & Pun 2020): output shapes, SRFB / selective block / SAB by hand, parameter counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dbd_lightning.models.ddnet import SRFB, DDNet, SelectiveBlock, SideAttention


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    return DDNet("resnet18").eval()


def _expected_strides():
    return [16, 8, 4, 2, 1]


@pytest.mark.parametrize("size", [(64, 96), (72, 40)])  # a multiple of 32 and one that is not
def test_all_twelve_outputs_have_the_documented_shapes(small_net, size):
    h, w = size
    with torch.no_grad():
        out = small_net(torch.randn(2, 3, h, w))
    assert out["logits"].shape == (2, 1, h, w) and out["depth"].shape == (2, 1, h, w)
    assert len(out["side_logits"]) == 5 and len(out["side_depth"]) == 5
    if h % 32 == 0 and w % 32 == 0:
        for s, d, k in zip(out["side_logits"], out["side_depth"], _expected_strides(), strict=True):
            assert s.shape == d.shape == (2, 1, h // k, w // k)
    assert out["side_logits"][-1].shape[-2:] == (h, w)  # the last stage is at full resolution
    maps = [out["logits"], *out["side_logits"], out["depth"], *out["side_depth"]]
    assert len(maps) == 12 and all(torch.isfinite(m).all() for m in maps)
    assert [f.shape[1] for f in out["features"]] == [64, 64, 128, 256, 512]


def test_vgg16_taps_are_the_max_pool_outputs():
    torch.manual_seed(0)
    net = DDNet("vgg16", pool_taps=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = net.encode(x)
        # the authors' wrapper: outputs of VGG16's five max-pools (features[4], [9], [16], [23], [30])
        body, y, want = net.encoder.body, x, []
        for name, module in body.named_children():
            y = module(y)
            if name in {"features_3", "features_8", "features_15", "features_22", "features_29"}:
                want.append(F.max_pool2d(y, 2, 2))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    for f, g in zip(feats, want, strict=True):
        assert torch.equal(f, g)
    assert [s.in_channels for s in net.side_heads] == [512, 256, 128, 64, 32]


def test_fusion_is_a_1x1_conv_of_the_upsampled_side_maps(small_net):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = small_net(x)
        up = torch.cat([F.interpolate(s, size=(64, 64), mode="bilinear", align_corners=False)
                        for s in out["side_logits"]], 1)
        upd = torch.cat([F.interpolate(s, size=(64, 64), mode="bilinear", align_corners=False)
                         for s in out["side_depth"]], 1)
        w, b = small_net.fuse.weight.view(1, 5, 1, 1), small_net.fuse.bias
        assert torch.allclose(out["logits"], (up * w).sum(1, keepdim=True) + b, atol=1e-5)
        wd, bd = small_net.fuse_depth.weight.view(1, 5, 1, 1), small_net.fuse_depth.bias
        assert torch.allclose(out["depth"], (upd * wd).sum(1, keepdim=True) + bd, atol=1e-5)


@pytest.mark.parametrize("form,kernels", [("cascaded", (3, 5, 7)), ("parallel", (1, 3, 5, 7))])
def test_selective_block_by_hand(form, kernels):
    torch.manual_seed(0)
    c = 16
    block = SelectiveBlock(c, kernels, form=form).eval()
    x = torch.randn(2, c, 9, 11)
    with torch.no_grad():
        out, a = block(x, return_weights=True)
        # branches: identity, then each conv applied to the previous branch (cascaded) or to x (parallel)
        branches, prev = [x], x
        for conv in block.convs:
            prev = conv(prev if form == "cascaded" else x)
            branches.append(prev)
        assert block.num_branches == len(kernels) + 1 == a.shape[1]
        for conv, k in zip(block.convs, kernels, strict=True):
            assert conv[0].kernel_size == (k, k) and conv[0].dilation == (k, k)
        # attention: softmax over branches of W_i (W_s GAP(sum of branches)), d = max(C/16, 32)
        assert block.squeeze.out_features == 32
        z = block.squeeze(torch.stack(branches).sum(0).mean(dim=(2, 3)))
        logits = torch.stack([fc(z) for fc in block.excite], 1)
        expected_a = logits.exp() / logits.exp().sum(1, keepdim=True)
        assert torch.allclose(a, expected_a, atol=1e-6)
        assert torch.allclose(out, sum(a[:, i, :, None, None] * b for i, b in enumerate(branches)), atol=1e-5)
    # the weights are a distribution over branches for every sample and channel
    assert a.shape == (2, len(kernels) + 1, c)
    assert (a > 0).all() and torch.allclose(a.sum(dim=1), torch.ones(2, c), atol=1e-6)


def test_sk_pool_is_the_authors_mean_of_means_by_default():
    """The authors' SKSPP pools ``U.mean(-1).mean(-1)``; one mean over (H, W) rounds differently in
    float32. On this input the two pools differ, and only the authors' order gives their z bit for bit."""
    torch.manual_seed(3)
    c = 32
    code, joint = SelectiveBlock(c).eval(), SelectiveBlock(c, pool="joint").eval()
    joint.load_state_dict(code.state_dict())
    x = torch.randn(1, c, 37, 53) * 100 + 7  # an offset and odd sizes: float32 sums round differently
    with torch.no_grad():
        branches = code.branches(x)
        u = torch.stack(branches, 1).sum(1)
        rows_then_cols, at_once = u.mean(-1).mean(-1), u.mean(dim=(-2, -1))
        assert not torch.equal(rows_then_cols, at_once)  # the two orders differ on this input
        a_code, a_joint = code.attention(branches), joint.attention(branches)
        z = code.squeeze(rows_then_cols)
        expected = torch.softmax(torch.stack([fc(z) for fc in code.excite], 1), 1)
    assert code.pool == "code" and torch.equal(a_code, expected)
    assert torch.equal(a_joint, torch.softmax(torch.stack([fc(joint.squeeze(at_once)) for fc in joint.excite], 1), 1))
    assert not torch.equal(a_code, a_joint)
    assert DDNet(encoder="resnet18", final_channels=8).stages[0].sk.pool == "code"


def test_attention_weights_sum_to_one_inside_the_network(small_net):
    weights = []
    hooks = [stage.sk.register_forward_hook(lambda m, i, o: weights.append(m.attention(m.branches(i[0]))))
             for stage in small_net.stages]
    with torch.no_grad():
        small_net(torch.randn(2, 3, 64, 64))
    for h in hooks:
        h.remove()
    assert len(weights) == 5
    for a in weights:
        assert a.shape[1] == 4 and torch.allclose(a.sum(1), torch.ones_like(a[:, 0]), atol=1e-6)


def test_sk_hidden_width_rule():
    assert SelectiveBlock(1024).squeeze.out_features == 64       # 1024 / 16
    assert SelectiveBlock(64).squeeze.out_features == 32         # max(4, 32)


def _srfb_params(ic: int, oc: int, kernels, reduce: int = 4) -> int:
    """Parameter count of one SRFB from its description (convs with bias, BN affine)."""
    m = ic // reduce
    d = max(m // 16, 32)
    n = ic * m * 9 + m + 2 * m                                   # 3x3 conv + BN
    n += sum(m * m * k * k + m + 2 * m for k in kernels)         # selective convs + BN
    n += m * d + d + (len(kernels) + 1) * (d * m + m)            # squeeze + one excite per branch
    n += m * oc + oc + 2 * oc                                    # 1x1 conv + BN
    return n


@pytest.mark.parametrize("ic,oc,form,kernels", [(2048, 1024, "cascaded", (3, 5, 7)), (64, 32, "parallel", (1, 3, 5, 7))])
def test_srfb_parameter_count_and_layout(ic, oc, form, kernels):
    block = SRFB(ic, oc, kernel_sizes=kernels, form=form)
    assert sum(p.numel() for p in block.parameters()) == _srfb_params(ic, oc, kernels)
    x = torch.randn(1, ic, 3, 5)
    with torch.no_grad():
        y = block.eval()(x)
    assert y.shape == (1, oc, 6, 10)
    assert isinstance(block.post_in[0], torch.nn.ReLU) and isinstance(block.post_in[1], torch.nn.BatchNorm2d)
    supp = SRFB(ic, oc, order="conv_bn_relu", kernel_sizes=kernels, form=form)
    assert isinstance(supp.post_in[0], torch.nn.BatchNorm2d) and isinstance(supp.post_out[1], torch.nn.ReLU)


def test_srfb_upsamples_nearest_first():
    block = SRFB(8, 4).eval()
    x = torch.randn(1, 8, 3, 3)
    with torch.no_grad():
        a = block(x)
        b = block.post_out(block.conv_out(block.sk(block.post_in(block.conv_in(x.repeat_interleave(2, 2)
                                                                                .repeat_interleave(2, 3))))))
    assert torch.allclose(a, b, atol=1e-6)


def test_side_attention_by_hand():
    torch.manual_seed(0)
    sab = SideAttention().eval()
    feats, maps = torch.randn(2, 8, 5, 5), torch.randn(2, 2, 5, 5)
    with torch.no_grad():
        y = sab(feats, maps)
        h = sab.post[1](torch.relu(F.conv2d(maps, sab.conv1.weight, sab.conv1.bias, padding=1)))
        w = torch.sigmoid(F.conv2d(h, sab.conv2.weight, sab.conv2.bias, padding=1))
    assert sab.conv1.in_channels == 2 and sab.conv1.out_channels == 32 and sab.conv2.out_channels == 1
    assert torch.allclose(y, feats * w, atol=1e-6) and ((w > 0) & (w < 1)).all()


def test_attention_switch_and_depth_activation():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    plain = DDNet("resnet18", attention=False).eval()
    assert plain.attention is None
    sig = DDNet("resnet18", depth_activation="sigmoid").eval()
    with torch.no_grad():
        out = sig(x)
    assert all(0 <= float(d.min()) and float(d.max()) <= 1 for d in [out["depth"], *out["side_depth"]])


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    net = DDNet("resnet18")
    out = net(torch.randn(2, 3, 64, 64))
    loss = sum(m.float().mean() for m in [out["logits"], out["depth"], *out["side_logits"], *out["side_depth"]])
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing[:5]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(encoder="resnet18", out_indices=[1, 2, 3, 4]), "five encoder levels"),
        (dict(encoder="vgg16"), "pool_taps=true"),
        (dict(encoder="resnet18", depth_activation="relu"), "depth_activation"),
        (dict(encoder="resnet18", selective_form="serial"), "form"),
        (dict(encoder="resnet18", kernel_sizes=[3, 4]), "odd"),
        (dict(encoder="resnet18", order="bn_conv"), "order"),
        (dict(encoder="resnet18", sk_pool="max"), "pool"),
    ],
)
def test_bad_arguments_fail_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DDNet(**kwargs)


def test_bad_input_fails_clearly(small_net):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        small_net(torch.randn(3, 64, 64))


def test_bench_case_reports_the_documented_fields():
    from dbd_lightning.bench import CASES
    from dbd_lightning.models.ddnet.bench import bench_ddnet_infer

    assert CASES["ddnet_infer_resnext101"][0] == "dbd_lightning.models.ddnet.bench:bench_ddnet_infer"
    out = bench_ddnet_infer("resnet18", size=64, repeats=1)
    for key in ("ms_per_image", "encoder_ms", "encoder_gflops", "decoder_gflops"):
        assert out[key] > 0
    assert out["params_total_M"] == pytest.approx(13.892762, abs=1e-6)
