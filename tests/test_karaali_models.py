"""Karaali B-NET / E-NET: shapes, dense (and receptive-field-aware) == patch-wise evaluation, converter vs numpy."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view

from dbd_lightning.convert import main as convert_main
from dbd_lightning.models.karaali import BNet, ENet
from dbd_lightning.models.karaali.convert import BNET_KEYS, ENET_KEYS
from dbd_lightning.models.karaali.engine import (
    WIDE_PHASE,
    grid_needs,
    head_from_dense,
    pixel_mask,
    snap_to_wide_grid,
    stream_dense,
    streams_dense,
    trunk_from_dense,
    wide_grid_shape,
    winograd_f33,
)
from dbd_lightning.ops.patches import extract_patches, reflect_pad
from dbd_lightning.ops.sparse_conv import conv2d_at, dilate_need
from dbd_lightning.utils.checkpoint import load_weights

# published file shapes (Karaali et al. models_tf1x), in file order
C3, C64 = (3, 3, 3, 64), (3, 3, 64, 64)
STREAM = [C3, C64, C64, C64]
STREAM27 = [C3, C64, C64, (1, 1, 64, 64)]
BLUR_SHAPES = (STREAM + STREAM27 + STREAM + [(3, 3, 192, 64), C64, C64, (1, 1, 64, 64)]
               + [(64, 300), (1, 300), (300, 150), (1, 150), (150, 23), (1, 23)])
EDGE_SHAPES = (STREAM + STREAM + STREAM27 + STREAM + [(3, 3, 256, 64), C64, C64, (1, 1, 64, 64)]
               + [(64, 300), (1, 300), (300, 150), (1, 150), (150, 2), (1, 2)])


def test_shapes_and_parameter_counts():
    b, e = BNet(), ENet()
    x = torch.rand(5, 3, 41, 41)
    assert b(x).shape == (5, 23) and e(x).shape == (5, 2)
    assert [t.shape[-1] for t in b.streams(x)] == [7, 7, 7]
    n_b = sum(p.numel() for p in b.parameters())
    # convs: 3 streams (4 + 4 + 4 convs) + trunk, no bias; FCs with bias
    expect = (3 * 27 * 64 + 3 * 9 * 64 * 64 + 2 * 9 * 64 * 64 + 64 * 64 + 3 * 9 * 64 * 64
              + 9 * 192 * 64 + 2 * 9 * 64 * 64 + 64 * 64 + 64 * 300 + 300 + 300 * 150 + 150 + 150 * 23 + 23)
    assert n_b == expect
    assert len(BNET_KEYS) == 22 and len(ENET_KEYS) == 26
    assert sorted(BNET_KEYS) == sorted(b.state_dict()) and sorted(ENET_KEYS) == sorted(e.state_dict())


@pytest.mark.parametrize("crops", [(8, 14), (7, 13)])
def test_dense_evaluation_equals_patch_forward(crops):
    torch.manual_seed(0)
    b = BNet(crop27=crops[0], crop15=crops[1]).double().eval()
    e = ENet(crop27=crops[0], crop15=crops[1]).double().eval()
    img = torch.rand(1, 3, 37, 45, dtype=torch.float64)
    pad = reflect_pad(img)
    ys, xs = torch.tensor([0, 5, 36, 20, 36]), torch.tensor([0, 44, 7, 30, 44])
    with torch.no_grad():
        patches = extract_patches(pad, ys, xs)
        maps = streams_dense(b.streams, pad)
        torch.testing.assert_close(head_from_dense(b, maps, ys, xs), b(patches), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(trunk_from_dense(b.trunk, maps[:2], maps[2], ys, xs, chunk=2), b(patches),
                                   rtol=1e-10, atol=1e-10)
        f1, f2 = streams_dense(e.f1, pad), stream_dense(e.f2, pad)
        torch.testing.assert_close(trunk_from_dense(e.trunk, [f2, *f1[:2]], f1[2], ys, xs, chunk=3), e(patches),
                                   rtol=1e-10, atol=1e-10)
    # the 41x41 patch is the reflect-padded neighbourhood
    p = patches[1].numpy()
    ref = np.pad(img[0].numpy(), ((0, 0), (20, 20), (20, 20)), mode="reflect")[:, 5:46, 44:85]
    np.testing.assert_array_equal(p, ref)


@pytest.mark.parametrize("sparse_max", [0.0, 0.3, 1.0])  # all dense / mixed / every 64-ch layer gathered
@pytest.mark.parametrize("winograd", [True, False])
def test_receptive_field_evaluation_equals_patch_forward(sparse_max, winograd):
    """Streams and trunk computed only where the pixels' patches read them (``need`` masks), the
    per-pixel 3x3 trunk conv by Winograd F(3x3, 3x3) or directly: still the patch-wise forward."""
    torch.manual_seed(1)
    b, e = BNet().double().eval(), ENet().double().eval()
    e.load_f1_from(b)
    h, w = 52, 61
    img = torch.rand(1, 3, h, w, dtype=torch.float64)
    pad = reflect_pad(img)
    g = torch.Generator().manual_seed(0)
    ys, xs = torch.randint(0, h, (40,), generator=g), torch.randint(0, w, (40,), generator=g)
    ys[:2], xs[:2] = torch.tensor([0, h - 1]), torch.tensor([w - 1, 0])  # corners
    needs = grid_needs(pixel_mask(ys, xs, h, w))
    assert 0.05 < needs[0].double().mean() < 0.95  # a real mix of needed and skipped positions
    with torch.no_grad():
        patches = extract_patches(pad, ys, xs)
        maps = streams_dense(b.streams, pad, needs, sparse_max)
        f2 = stream_dense(e.f2, pad, needs[0], sparse_max)
        got_b = trunk_from_dense(b.trunk, maps[:2], maps[2], ys, xs, 4, sparse_max, winograd)
        got_e = trunk_from_dense(e.trunk, [f2, *maps[:2]], maps[2], ys, xs, 7, sparse_max, winograd)
        torch.testing.assert_close(got_b, b(patches), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(got_e, e(patches), rtol=1e-10, atol=1e-10)
        # float32 (fused oneDNN conv + ReLU on the CPU) agrees to float32 rounding
        b32 = b.float()
        pad32 = pad.float().contiguous(memory_format=torch.channels_last)
        m32 = streams_dense(b32.streams, pad32, needs, sparse_max)
        torch.testing.assert_close(trunk_from_dense(b32.trunk, m32[:2], m32[2], ys, xs, 8, sparse_max, winograd),
                                   got_b.float(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sparse_max", [0.0, 1.0])
@pytest.mark.parametrize("hw", [(52, 61), (45, 47)])  # sizes with every remainder mod 3
def test_native_stride_wide_streams_equal_patch_forward_at_grid_points(sparse_max, hw):
    """``phase`` (native stride): the 41 / 27 streams pool with stride 3, each pixel reads them at its
    nearest grid point ``1 + 3u``; equal to the patch-wise forward with those two streams' patch taken
    there and the 15 stream's at the pixel (float64). The grid point is <= 1 px away inside the image."""
    torch.manual_seed(2)
    b, e = BNet().double().eval(), ENet().double().eval()
    e.load_f1_from(b)
    h, w = hw
    img = torch.rand(1, 3, h, w, dtype=torch.float64)
    pad = reflect_pad(img)
    g = torch.Generator().manual_seed(1)
    ys, xs = torch.randint(0, h, (40,), generator=g), torch.randint(0, w, (40,), generator=g)
    ys[:4], xs[:4] = torch.tensor([0, h - 1, 0, h - 1]), torch.tensor([w - 1, 0, 0, w - 1])  # corners
    grid = wide_grid_shape(h, w, WIDE_PHASE)
    uy, ux = snap_to_wide_grid(ys, xs, grid, WIDE_PHASE)
    gy, gx = WIDE_PHASE + 3 * uy, WIDE_PHASE + 3 * ux
    assert ((gy >= 0) & (gy < h) & (gx >= 0) & (gx < w)).all()
    assert (gy - ys).abs().max() <= 2 and (gx - xs).abs().max() <= 2
    inner = (ys < 3 * grid[0]) & (xs < 3 * grid[1])
    assert (gy - ys)[inner].abs().max() <= 1 and (gx - xs)[inner].abs().max() <= 1
    needs = grid_needs(pixel_mask(ys, xs, h, w), WIDE_PHASE)
    with torch.no_grad():
        fine, wide = extract_patches(pad, ys, xs), extract_patches(pad, gy, gx)
        maps = streams_dense(b.streams, pad, needs, sparse_max, WIDE_PHASE)
        assert tuple(maps[0].shape[-2:]) == (grid[0] + 6, grid[1] + 6) == tuple(maps[1].shape[-2:])
        f2 = stream_dense(e.f2, pad, needs[0], sparse_max, WIDE_PHASE)
        got_b = trunk_from_dense(b.trunk, maps[:2], maps[2], ys, xs, 6, sparse_max, wide_phase=WIDE_PHASE)
        got_e = trunk_from_dense(e.trunk, [f2, *maps[:2]], maps[2], ys, xs, 9, sparse_max, wide_phase=WIDE_PHASE)
        torch.testing.assert_close(got_b, b(wide, fine), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(got_e, e(wide, fine), rtol=1e-10, atol=1e-10)
        # and not the exact evaluation (the wide patches moved for most pixels)
        assert not torch.allclose(got_b, b(fine), rtol=1e-6, atol=1e-6)
        with pytest.raises(ValueError, match="native-stride wide maps"):
            trunk_from_dense(b.trunk, streams_dense(b.streams, pad)[:2], maps[2], ys, xs, 6, wide_phase=WIDE_PHASE)
        with pytest.raises(ValueError, match="pooling"):
            stream_dense(b.streams.s15, pad, phase=WIDE_PHASE)


def test_strided_max_pool3_equals_max_pool2d_at_every_phase():
    from dbd_lightning.models.karaali.engine import strided_max_pool3

    x = torch.randn(1, 5, 23, 31).contiguous(memory_format=torch.channels_last)
    for phase in range(3):
        torch.testing.assert_close(strided_max_pool3(x, phase), F.max_pool2d(x[..., phase:, phase:], 3, 3),
                                   rtol=0, atol=0)


def test_conv2d_at_and_dilate_need():
    torch.manual_seed(0)
    x1, x2 = torch.randn(1, 3, 20, 23, dtype=torch.float64), torch.randn(1, 2, 20, 23, dtype=torch.float64)
    for k, d in [(3, 1), (3, 3), (1, 3), (5, 2)]:
        wt = torch.randn(4, 5, k, k, dtype=torch.float64)
        ref = F.conv2d(torch.cat([x1, x2], 1), wt, dilation=d)
        need = torch.rand(ref.shape[-2:]) < 0.3
        got = conv2d_at([x1, x2], wt, d, need, relu=False, sparse_max=1.0, chunk=7)
        torch.testing.assert_close(got[..., need], ref[..., need], rtol=1e-12, atol=1e-12)
        assert (got[..., ~need] == 0).all()
        torch.testing.assert_close(conv2d_at([x1, x2], wt, d, need, sparse_max=0.0), ref.relu())
        # input mask: every input a needed output reads, nothing else
        inp = dilate_need(need, k, d)
        expect = torch.zeros(x1.shape[-2:], dtype=torch.bool)
        for y, x in need.nonzero().tolist():
            expect[y:y + d * (k - 1) + 1:d, x:x + d * (k - 1) + 1:d] = True
        assert torch.equal(inp, expect)
    # float32 CPU: several inputs run densely as per-input convs summed in place by oneDNN
    a32, b32 = (t.float().contiguous(memory_format=torch.channels_last) for t in (x1, x2))
    w32 = torch.randn(6, 5, 3, 3)
    torch.testing.assert_close(conv2d_at([a32, b32], w32, 3, None, relu=False),
                               F.conv2d(torch.cat([a32, b32], 1), w32, dilation=3), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="need has shape"):
        conv2d_at(x1, torch.randn(4, 3, 3, 3, dtype=torch.float64), 1, torch.ones(3, 3, dtype=torch.bool))


def test_winograd_f33_is_the_3_tap_correlation():
    at, g, bt = winograd_f33()
    rng = np.random.default_rng(0)
    d, k = rng.standard_normal(5), rng.standard_normal(3)
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), np.correlate(d, k, mode="valid"), rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------
# independent numpy forward in the published (HWIO, NHWC) layout
def np_conv(x, w):  # x: H,W,Cin; w: kh,kw,Cin,Cout; VALID, no bias, ReLU
    win = sliding_window_view(x, w.shape[:2], axis=(0, 1))  # H',W',Cin,kh,kw
    return np.maximum(np.einsum("hwcij,ijco->hwo", win, w), 0.0)


def np_pool(x):
    h, w, c = x.shape
    return x[: h // 3 * 3, : w // 3 * 3].reshape(h // 3, 3, w // 3, 3, c).max(axis=(1, 3))


def np_stream(x, ws, pool_after):
    for i, w in enumerate(ws):
        x = np_conv(x, w)
        if i == pool_after:
            x = np_pool(x)
    return x


def np_head(feat, ws):
    x = feat
    for w in ws[:4]:
        x = np_conv(x, w)
    x = x.reshape(-1)
    for i in range(3):
        x = x @ ws[4 + 2 * i] + ws[5 + 2 * i][0]
        if i < 2:
            x = np.maximum(x, 0.0)
    return x


def np_bnet(p41, w):
    s41 = np_stream(p41, w[0:4], 0)
    s27 = np_stream(p41[8:35, 8:35], w[4:8], 2)
    s15 = np_stream(p41[14:29, 14:29], w[8:12], None)
    return np_head(np.concatenate([s41, s27, s15], -1), w[12:22])


def np_enet(p41, w):
    first = np_stream(p41, w[0:4], 0)
    second = np_stream(p41, w[4:8], 0)
    s27 = np_stream(p41[8:35, 8:35], w[8:12], 2)
    s15 = np_stream(p41[14:29, 14:29], w[12:16], None)
    return np_head(np.concatenate([second, first, s27, s15], -1), w[16:26])


def _write(folder, shapes, rng):
    from scipy.io import savemat

    folder.mkdir(parents=True)
    arrays = []
    for i, shape in enumerate(shapes):
        fan_in = int(np.prod(shape[:-1]))
        a = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        savemat(folder / f"{i}.mat", {"weights": a})
        arrays.append(a.astype(np.float64))
    return arrays


def test_converter_reproduces_numpy_forward_of_published_layout(tmp_path, capsys):
    rng = np.random.default_rng(0)
    wb = _write(tmp_path / "blur", BLUR_SHAPES, rng)
    we = _write(tmp_path / "edge", EDGE_SHAPES, rng)
    out = tmp_path / "ckpt"
    assert convert_main(["karaali", "--blur", str(tmp_path / "blur"), "--edge", str(tmp_path / "edge"),
                         "--out", str(out)]) == 0
    assert "differs from" in capsys.readouterr().out  # independent random f1 weights
    b, e = BNet().double().eval(), ENet().double().eval()
    load_weights(b, out / "bnet.ckpt", prefix="net.")
    load_weights(e, out / "enet.ckpt", prefix="net.")
    patches = rng.random((3, 41, 41, 3))
    x = torch.from_numpy(patches).permute(0, 3, 1, 2)
    with torch.no_grad():
        ours_b, ours_e = b(x).numpy(), e(x).numpy()
    for i in range(3):
        np.testing.assert_allclose(ours_b[i], np_bnet(patches[i], wb), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ours_e[i], np_enet(patches[i], we), rtol=1e-9, atol=1e-9)


def test_converter_rejects_bad_files(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    rng = np.random.default_rng(1)
    _write(tmp_path / "blur", BLUR_SHAPES[:-1] + [(1, 22)], rng)
    with pytest.raises(SystemExit) as exc:  # the CLI's error style: error: <file and fix>, exit 2
        convert_main(["karaali", "--blur", str(tmp_path / "blur"), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and re.search(r"21\.mat.*does not fit", capsys.readouterr().err)
    (tmp_path / "edge").mkdir()
    with pytest.raises(SystemExit) as exc:
        convert_main(["karaali", "--edge", str(tmp_path / "edge"), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2 and "0.mat" in capsys.readouterr().err


@pytest.mark.parametrize("border,np_mode,cv_mode", [("reflect", "reflect", cv2.BORDER_REFLECT_101),
                                                   ("symmetric", "symmetric", cv2.BORDER_REFLECT)])
def test_patch_border_modes_match_numpy_and_opencv(border, np_mode, cv_mode):
    """``symmetric`` = OpenCV BORDER_REFLECT (the authors' cv2.copyMakeBorder: edge pixel repeated);
    ``reflect`` (default) = BORDER_REFLECT_101. Checked against numpy.pad and OpenCV themselves."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    ours = reflect_pad(torch.from_numpy(img).permute(2, 0, 1)[None].float(), pad=20, border=border)
    ours = ours[0].permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.array_equal(ours, np.pad(img, ((20, 20), (20, 20), (0, 0)), mode=np_mode))
    assert np.array_equal(ours, cv2.copyMakeBorder(img, 20, 20, 20, 20, cv_mode))
    assert np.array_equal(ours[20, :20], img[0, :20][::-1] if border == "symmetric" else img[0, 1:21][::-1])
    with pytest.raises(ValueError, match="border"):
        reflect_pad(torch.zeros(1, 3, 30, 30), border="wrap")
