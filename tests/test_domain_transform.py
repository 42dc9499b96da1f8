"""Recursive domain-transform filter vs a naive loop reference and its closed-form behaviour.

The reference below is a deliberately naive, per-pixel, in-place loop version of
Gastal & Oliveira's recursive filter (``F[x] += V[x] (F[x-1] - F[x])``), written
independently of the vectorised associative-scan implementation. OpenCV's
``ximgproc.dtFilter`` is not used: it lives in opencv-contrib, whose wheel ships the
same ``cv2`` module as the installed opencv-python-headless (albumentations needs
the latter) and cannot be installed next to it cleanly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dbd_lightning.ops.domain_transform import dt_filter, iteration_sigmas, normalized_dt_propagation


def naive_rf(img: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float, n_iter: int,
             psi: float = 0.0, edges: np.ndarray | None = None) -> np.ndarray:
    """Loop reference: ``img`` (C,H,W), ``guide`` (K,H,W), ``edges`` (H,W) bool."""
    f = img.astype(np.float64).copy()
    c, h, w = f.shape
    e = np.zeros((h, w)) if edges is None else edges.astype(np.float64)
    dh = np.ones((h, w))  # dh[y, x]: distance between (y, x-1) and (y, x)
    dv = np.ones((h, w))  # dv[y, x]: distance between (y-1, x) and (y, x)
    for y in range(h):
        for x in range(w):
            if x > 0:
                dh[y, x] += sigma_s / sigma_r * sum(abs(guide[k, y, x] - guide[k, y, x - 1]) for k in range(len(guide)))
                dh[y, x] += psi * (e[y, x] + e[y, x - 1]) / 2
            if y > 0:
                dv[y, x] += sigma_s / sigma_r * sum(abs(guide[k, y, x] - guide[k, y - 1, x]) for k in range(len(guide)))
                dv[y, x] += psi * (e[y, x] + e[y - 1, x]) / 2
    for i in range(n_iter):
        sigma_h = sigma_s * math.sqrt(3) * 2 ** (n_iter - (i + 1)) / math.sqrt(4**n_iter - 1)
        a = math.exp(-math.sqrt(2) / sigma_h)
        for ch in range(c):
            for y in range(h):
                for x in range(1, w):
                    f[ch, y, x] += a ** dh[y, x] * (f[ch, y, x - 1] - f[ch, y, x])
                for x in range(w - 2, -1, -1):
                    f[ch, y, x] += a ** dh[y, x + 1] * (f[ch, y, x + 1] - f[ch, y, x])
            for x in range(w):
                for y in range(1, h):
                    f[ch, y, x] += a ** dv[y, x] * (f[ch, y - 1, x] - f[ch, y, x])
                for y in range(h - 2, -1, -1):
                    f[ch, y, x] += a ** dv[y + 1, x] * (f[ch, y + 1, x] - f[ch, y, x])
    return f


@pytest.mark.parametrize("psi", [0.0, 5.0])
def test_matches_naive_loop_reference(psi):
    rng = np.random.default_rng(0)
    img = rng.random((2, 2, 13, 17))
    guide = rng.random((2, 3, 13, 17))
    edges = rng.random((2, 13, 17)) > 0.8
    out = dt_filter(torch.from_numpy(img), torch.from_numpy(guide), sigma_s=6.0, sigma_r=0.7, iterations=3,
                    psi=psi, depth_edges=torch.from_numpy(edges)[:, None])
    for b in range(2):
        ref = naive_rf(img[b], guide[b], 6.0, 0.7, 3, psi, edges[b])
        np.testing.assert_allclose(out[b].numpy(), ref, rtol=1e-9, atol=1e-10)


def test_constant_guide_gives_spatial_smoothing_of_variance_sigma_s_squared():
    w, sigma_s = 601, 12.0
    x = torch.zeros(1, 1, 1, w, dtype=torch.float64)
    x[..., w // 2] = 1.0
    guide = torch.zeros_like(x)
    k = dt_filter(x, guide, sigma_s=sigma_s, sigma_r=0.1, iterations=3)[0, 0, 0].numpy()
    pos = np.arange(w) - w // 2
    assert k.sum() == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(k, k[::-1], atol=1e-12)  # symmetric
    assert (k * pos).sum() == pytest.approx(0.0, abs=1e-9)
    var = (k * pos**2).sum()
    assert var == pytest.approx(sigma_s**2, rel=0.05)
    # a constant image stays constant whatever the guide
    c = torch.full((1, 2, 9, 11), 0.3, dtype=torch.float64)
    np.testing.assert_allclose(dt_filter(c, torch.rand(1, 3, 9, 11, dtype=torch.float64)).numpy(), 0.3, atol=1e-12)


def test_iteration_sigmas_add_up_to_sigma_s():
    s = iteration_sigmas(7.0, 5)
    assert sum(v * v for v in s) == pytest.approx(49.0)
    assert s[0] > s[-1]


def test_psi_barrier_blocks_propagation():
    h, w = 8, 40
    img = torch.zeros(1, 1, h, w, dtype=torch.float64)
    img[..., : w // 2] = 1.0
    guide = torch.zeros(1, 1, h, w, dtype=torch.float64)
    edges = torch.zeros(1, 1, h, w)
    edges[..., w // 2] = 1
    kw = dict(sigma_s=20.0, sigma_r=1.0, iterations=3, depth_edges=edges)
    leak_free = dt_filter(img, guide, psi=0.0, **kw)[..., w // 2 + 1:]
    blocked = dt_filter(img, guide, psi=1e4, **kw)[..., w // 2 + 1:]
    assert leak_free.max() > 0.3
    assert blocked.max() < 1e-3


def test_normalized_propagation_fills_and_respects_depth_edges():
    h, w = 10, 30
    sparse = torch.zeros(1, 1, h, w, dtype=torch.float64)
    valid = torch.zeros_like(sparse)
    sparse[0, 0, 5, 3], valid[0, 0, 5, 3] = 1.0, 1
    sparse[0, 0, 5, 26], valid[0, 0, 5, 26] = 3.0, 1
    guide = torch.zeros_like(sparse)
    edges = torch.zeros_like(sparse)
    edges[..., 15] = 1
    dense = normalized_dt_propagation(sparse, valid, guide, 30.0, 1.0, 5, psi=1e4, depth_edges=edges)
    assert torch.allclose(dense[..., :15], torch.ones(()).double(), atol=1e-3)
    assert torch.allclose(dense[..., 16:], torch.full((), 3.0).double(), atol=1e-3)
    mixed = normalized_dt_propagation(sparse, valid, guide, 30.0, 1.0, 5, psi=0.0, depth_edges=edges)
    assert 1.2 < float(mixed[0, 0, 5, 14]) < 2.8  # without the penalty both sides mix
    # a single sample fills the whole image with its value; no sample -> 0, no NaN
    one = normalized_dt_propagation(sparse, valid * (sparse == 1.0), guide, 30.0, 1.0, 5)
    assert torch.allclose(one, torch.ones(()).double(), atol=1e-9)
    none = normalized_dt_propagation(sparse, torch.zeros_like(valid), guide, 30.0, 1.0, 5)
    assert torch.isfinite(none).all() and float(none.abs().max()) == 0.0


def test_batch_items_are_independent_and_float32_close_to_float64():
    rng = np.random.default_rng(1)
    img = torch.from_numpy(rng.random((3, 1, 20, 24)))
    guide = torch.from_numpy(rng.random((3, 3, 20, 24)))
    full = dt_filter(img, guide, 10.0, 0.5, 3)
    single = torch.cat([dt_filter(img[i:i + 1], guide[i:i + 1], 10.0, 0.5, 3) for i in range(3)])
    torch.testing.assert_close(full, single)
    f32 = dt_filter(img.float(), guide.float(), 10.0, 0.5, 3)
    torch.testing.assert_close(f32.double(), full, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_gpu_agree():
    img, guide = torch.rand(2, 2, 33, 45), torch.rand(2, 3, 33, 45)
    edges = torch.rand(2, 1, 33, 45) > 0.9
    cpu = dt_filter(img, guide, 9.0, 0.5, 5, psi=20.0, depth_edges=edges)
    gpu = dt_filter(img.cuda(), guide.cuda(), 9.0, 0.5, 5, psi=20.0, depth_edges=edges.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        dt_filter(torch.rand(5, 5))
    with pytest.raises(ValueError, match="differ"):
        dt_filter(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 6))
    with pytest.raises(ValueError, match="depth_edges"):
        dt_filter(torch.rand(1, 1, 5, 5), psi=1.0, depth_edges=torch.ones(1, 1, 4, 5))
    with pytest.raises(ValueError, match="sigma"):
        dt_filter(torch.rand(1, 1, 5, 5), sigma_r=0.0)
