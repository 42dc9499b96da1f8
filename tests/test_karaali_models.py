"""Karaali B-NET / E-NET: shapes, dense == patch-wise evaluation, published-weights converter vs numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from dbd_lightning.convert import main as convert_main
from dbd_lightning.convert.karaali import BNET_KEYS, ENET_KEYS
from dbd_lightning.models.karaali import BNet, ENet
from dbd_lightning.models.karaali.pipeline import trunk_from_dense
from dbd_lightning.ops.patches import extract_patches, reflect_pad
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
        maps = b.streams.dense(pad)
        torch.testing.assert_close(b.head_from_dense(maps, ys, xs), b(patches), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(trunk_from_dense(b.trunk, maps[:2], maps[2], ys, xs, chunk=2), b(patches),
                                   rtol=1e-10, atol=1e-10)
        f1, f2 = e.f1.dense(pad), e.f2.dense(pad)
        torch.testing.assert_close(trunk_from_dense(e.trunk, [f2, *f1[:2]], f1[2], ys, xs, chunk=3), e(patches),
                                   rtol=1e-10, atol=1e-10)
    # the 41x41 patch is the reflect-padded neighbourhood
    p = patches[1].numpy()
    ref = np.pad(img[0].numpy(), ((0, 0), (20, 20), (20, 20)), mode="reflect")[:, 5:46, 44:85]
    np.testing.assert_array_equal(p, ref)


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


def test_converter_rejects_bad_files(tmp_path):
    rng = np.random.default_rng(1)
    _write(tmp_path / "blur", BLUR_SHAPES[:-1] + [(1, 22)], rng)
    with pytest.raises(ValueError, match=r"21\.mat.*does not fit"):
        convert_main(["karaali", "--blur", str(tmp_path / "blur"), "--out", str(tmp_path / "o")])
    (tmp_path / "edge").mkdir()
    with pytest.raises(FileNotFoundError, match=r"0\.mat"):
        convert_main(["karaali", "--edge", str(tmp_path / "edge"), "--out", str(tmp_path / "o")])
