"""Recursive domain-transform filter vs a naive loop reference, OpenCV's ``ximgproc.dtFilter`` and closed forms.

The reference below is a deliberately naive, per-pixel, in-place loop version of
Gastal & Oliveira's recursive filter (``F[x] += V[x] (F[x-1] - F[x])``), written
independently of the vectorised associative-scan implementation. The plain filter
(``psi = 0``) is also checked against an implementation we did not write: OpenCV
contrib's ``cv2.ximgproc.dtFilter(..., mode=DTF_RF)`` (skipped when the installed
``cv2`` has no ``ximgproc``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from dbd_lightning.ops.domain_transform import (
    domain_transform_derivatives,
    dt_filter,
    iteration_sigmas,
    normalized_dt_propagation,
    recursive_filter,
)


def naive_rf(img: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float, n_iter: int,
             psi: float = 0.0, edges: np.ndarray | None = None, placement: str = "mean") -> np.ndarray:
    """Loop reference: ``img`` (C,H,W), ``guide`` (K,H,W), ``edges`` (H,W) bool.

    ``placement="mean"``: the link into pixel x pays psi (E[x-1] + E[x]) / 2; ``"next"`` (the
    authors' released code: the penalty is added per pixel to the distance array indexed by the
    link's right / lower end): psi E[x].
    """
    f = img.astype(np.float64).copy()
    c, h, w = f.shape
    e = np.zeros((h, w)) if edges is None else edges.astype(np.float64)
    dh = np.ones((h, w))  # dh[y, x]: distance between (y, x-1) and (y, x)
    dv = np.ones((h, w))  # dv[y, x]: distance between (y-1, x) and (y, x)
    for y in range(h):
        for x in range(w):
            if x > 0:
                dh[y, x] += sigma_s / sigma_r * sum(abs(guide[k, y, x] - guide[k, y, x - 1]) for k in range(len(guide)))
                dh[y, x] += psi * ((e[y, x] + e[y, x - 1]) / 2 if placement == "mean" else e[y, x])
            if y > 0:
                dv[y, x] += sigma_s / sigma_r * sum(abs(guide[k, y, x] - guide[k, y - 1, x]) for k in range(len(guide)))
                dv[y, x] += psi * ((e[y, x] + e[y - 1, x]) / 2 if placement == "mean" else e[y, x])
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


@pytest.mark.parametrize("psi,placement", [(0.0, "mean"), (5.0, "mean"), (5.0, "next")])
def test_matches_naive_loop_reference(psi, placement):
    rng = np.random.default_rng(0)
    img = rng.random((2, 2, 13, 17))
    guide = rng.random((2, 3, 13, 17))
    edges = rng.random((2, 13, 17)) > 0.8
    out = dt_filter(torch.from_numpy(img), torch.from_numpy(guide), sigma_s=6.0, sigma_r=0.7, iterations=3,
                    psi=psi, depth_edges=torch.from_numpy(edges)[:, None], penalty_placement=placement)
    for b in range(2):
        ref = naive_rf(img[b], guide[b], 6.0, 0.7, 3, psi, edges[b], placement)
        np.testing.assert_allclose(out[b].numpy(), ref, rtol=1e-9, atol=1e-10)
        if psi:  # the two placements give different filters on this input
            other = naive_rf(img[b], guide[b], 6.0, 0.7, 3, psi, edges[b], "next" if placement == "mean" else "mean")
            assert np.abs(other - ref).max() > 1e-3


def test_penalty_placement_of_a_single_depth_edge_pixel():
    """One depth-edge pixel at column 3 of a flat row: "mean" charges psi / 2 to both of its links,
    "next" (the authors' code) charges psi to the link that ends at it and nothing to the one after."""
    guide = torch.zeros(1, 1, 1, 6, dtype=torch.float64)
    edges = torch.zeros(1, 1, 1, 6, dtype=torch.float64)
    edges[..., 3] = 1
    dx_mean, _ = domain_transform_derivatives(guide, 1.0, 1.0, psi=10.0, depth_edges=edges)
    dx_next, _ = domain_transform_derivatives(guide, 1.0, 1.0, psi=10.0, depth_edges=edges, penalty_placement="next")
    assert dx_mean[0, 0, 0].tolist() == [1, 1, 6, 6, 1]  # links 0-1 1-2 2-3 3-4 4-5
    assert dx_next[0, 0, 0].tolist() == [1, 1, 11, 1, 1]
    with pytest.raises(ValueError, match="penalty_placement"):
        domain_transform_derivatives(guide, 1.0, 1.0, psi=10.0, depth_edges=edges, penalty_placement="left")


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


# --- OpenCV contrib ``ximgproc.dtFilter`` (RF mode) as an independent reference, psi = 0 -----------------------
#
# Parameter mapping, found by experiment (OpenCV's docs only say "sigma_H / sigma_r of the original article"):
#   * ``sigmaSpatial`` = our ``sigma_s`` (the sigma_H of the whole filter), ``numIters`` = our ``iterations``;
#     OpenCV uses the same per-iteration schedule sigma_H_i = sigma_H sqrt(3) 2^(N-i) / sqrt(4^N - 1),
#     a = exp(-sqrt(2) / sigma_H_i), and per iteration a horizontal then a vertical causal + anti-causal pass
#     (checked below: the reversed or a constant schedule, or vertical-first, are off by > 1e-2).
#   * ``sigmaColor`` = our ``sigma_r`` *in the units of the guide values*: a float32 guide is used as is (ours in
#     [0, 1] -> same sigma_r); a uint8 guide is used as raw 0..255 values, not rescaled, so a [0, 1] guide
#     ``g`` and ``sigma_r`` correspond to ``uint8(255 g)`` and ``sigmaColor = 255 sigma_r``.
#   * multi-channel guides: d = 1 + sigma_s / sigma_r * sum_c |dI_c| (L1 over the channels, as ours; the L2 or
#     max combination is off by > 0.1); 1- and 3-channel sources are filtered per channel.
#   * boundaries: no padding, each line's first sample starts the recursion (y[0] = f[0], z[W-1] = y[W-1]); also
#     for 1xW, Hx1, 2x2 and 1x1 images.
#   * a uint8 source gives a uint8 result (rounded): compared with a tolerance of half a grey level.
#
# Tolerance: OpenCV computes in float32 (eps = 1.19e-7) and ours runs in float64; every output is a convex
# combination produced by 2N first-order recursions (contractive: weights in [0, 1], no error growth along a
# line), so the float32 round-off stays at a few eps for data in [0, 1]. Measured max |OpenCV - ours| over the
# cases of test_plain_filter_matches_opencv_dtfilter_rf: 7.3e-7 (sigma_s = 60), 1.8e-7 .. 4.5e-7 for the
# others; with ours in float32 as well (round-off on both sides) 8.9e-7. CV_ATOL = 2e-6 (~17 eps; 4e-6 when
# both sides are float32) leaves margin for other CPUs / SIMD exp paths yet is ~2000x below what a 1% change
# of sigma_r (3.7e-3) and ~400x below what a 1% change of sigma_s (8e-4) does.

CV_ATOL = 2e-6
CV_CASES = [  # (sigma_s, sigma_r, iterations): Karaali's guide filter, propagation-like, OpenCV-style, very sharp
    (7.0, 0.5, 5), (12.0, 3.75, 5), (60.0, 0.4, 3), (2.0, 0.05, 1)]


def _ximgproc():
    cv = pytest.importorskip("cv2.ximgproc", reason="cv2.ximgproc (opencv-contrib) is not installed")
    if not hasattr(cv, "dtFilter"):
        pytest.skip("cv2.ximgproc has no dtFilter")
    return cv


def _to_t(a: np.ndarray) -> torch.Tensor:
    """HxW or HxWxC numpy -> (1, C, H, W) float64."""
    a = np.asarray(a, np.float64)
    return torch.from_numpy((a[..., None] if a.ndim == 2 else a).transpose(2, 0, 1).copy())[None]


def _from_t(t: torch.Tensor, like: np.ndarray) -> np.ndarray:
    return t[0].numpy().transpose(1, 2, 0).reshape(like.shape)


def _test_image(name: str, channels: int) -> np.ndarray:
    """float32 HxW(xC) image in [0, 1]."""
    if name == "texture":
        img = np.random.default_rng(0).random((40, 48, 3))
    elif name == "step":  # vertical step edge, a different contrast per channel, plus a little texture
        img = np.zeros((24, 64, 3))
        img[:, 32:] = [1.0, 0.6, 0.3]
        img += 0.05 * np.random.default_rng(1).random(img.shape)
    else:  # a real photo
        import skimage.data

        img = cv2.resize(skimage.data.astronaut(), (96, 96), interpolation=cv2.INTER_AREA) / 255.0
    img = img.astype(np.float32)
    return img[..., 0] if channels == 1 else img


@pytest.mark.parametrize("image", ["texture", "step", "astronaut"])
@pytest.mark.parametrize(("guide_channels", "src_channels"), [(1, 1), (1, 3), (3, 1), (3, 3)])
def test_plain_filter_matches_opencv_dtfilter_rf(image, guide_channels, src_channels):
    xi = _ximgproc()
    guide = _test_image(image, guide_channels)
    # the source: the image itself (3 ch) or a different signal on the same grid (1 ch: sparse samples, as fed to
    # Karaali's normalised propagation), so that the joint (cross) filtering is exercised too
    h, w = guide.shape[:2]
    rng = np.random.default_rng(2)
    src = _test_image(image, 3) if src_channels == 3 else (rng.random((h, w)) > 0.9).astype(np.float32)
    for sigma_s, sigma_r, n in CV_CASES:
        ref = xi.dtFilter(guide, src, sigma_s, sigma_r, mode=xi.DTF_RF, numIters=n)
        assert ref.dtype == np.float32 and ref.shape == src.shape
        ours = _from_t(dt_filter(_to_t(src), _to_t(guide), sigma_s, sigma_r, n), src)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=CV_ATOL, err_msg=f"{sigma_s=} {sigma_r=} {n=}")
        # our float32 path too (round-off on both sides)
        ours32 = _from_t(dt_filter(_to_t(src).float(), _to_t(guide).float(), sigma_s, sigma_r, n).double(), src)
        np.testing.assert_allclose(ours32, ref, rtol=0, atol=2 * CV_ATOL, err_msg=f"float32 {sigma_s=} {sigma_r=} {n=}")


def test_opencv_uint8_guide_is_raw_0_255_and_uint8_source_is_rounded():
    xi = _ximgproc()
    rng = np.random.default_rng(3)
    g8 = (rng.random((30, 37, 3)) * 255).astype(np.uint8)
    src = rng.random((30, 37)).astype(np.float32)
    for sigma_s, sigma_r, n in CV_CASES:
        ours = _from_t(dt_filter(_to_t(src), _to_t(g8 / 255.0), sigma_s, sigma_r, n), src)
        ref = xi.dtFilter(g8, src, sigma_s, 255.0 * sigma_r, mode=xi.DTF_RF, numIters=n)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=CV_ATOL)
        # a uint8 guide is not rescaled to [0, 1]: with the unscaled sigma_r the result is a different filter
        wrong = xi.dtFilter(g8, src, sigma_s, sigma_r, mode=xi.DTF_RF, numIters=n)
        assert np.abs(ours - wrong).max() > 1e-2
    s8 = (rng.random((30, 37, 3)) * 255).astype(np.uint8)
    ref8 = xi.dtFilter(g8, s8, 10.0, 100.0, mode=xi.DTF_RF, numIters=3)
    assert ref8.dtype == np.uint8
    ours8 = _from_t(dt_filter(_to_t(s8.astype(np.float64)), _to_t(g8 / 255.0), 10.0, 100.0 / 255.0, 3), s8)
    assert np.abs(ours8 - ref8).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("shape", [(1, 30), (30, 1), (2, 2), (1, 1)])
def test_opencv_dtfilter_boundaries_and_degenerate_sizes(shape):
    xi = _ximgproc()
    rng = np.random.default_rng(4)
    guide = rng.random((*shape, 3)).astype(np.float32)
    src = rng.random(shape).astype(np.float32)
    ref = xi.dtFilter(guide, src, 5.0, 0.5, mode=xi.DTF_RF, numIters=3)
    ours = _from_t(dt_filter(_to_t(src), _to_t(guide), 5.0, 0.5, 3), src)
    np.testing.assert_allclose(ours, ref.reshape(shape), rtol=0, atol=CV_ATOL)


def test_opencv_dtfilter_pins_schedule_order_and_channel_norm():
    """The agreement is not loose: each alternative convention is far outside the tolerance."""
    xi = _ximgproc()
    rng = np.random.default_rng(5)
    guide = rng.random((40, 48, 3)).astype(np.float32)
    src = rng.random((40, 48)).astype(np.float32)
    sigma_s, sigma_r, n = 8.0, 0.5, 3
    ref = xi.dtFilter(guide, src, sigma_s, sigma_r, mode=xi.DTF_RF, numIters=n)
    g, f = _to_t(guide), _to_t(src)
    dx, dy = domain_transform_derivatives(g, sigma_s, sigma_r)

    def by_iteration(sigmas, dx=dx, dy=dy, vertical_first=False):
        # one RF iteration with a given sigma_H is recursive_filter(..., sigma_H, iterations=1)
        out = f
        for s in sigmas:
            if vertical_first:
                out = recursive_filter(out.transpose(-1, -2), dy.transpose(-1, -2), dx.transpose(-1, -2), s, 1)
                out = out.transpose(-1, -2)
            else:
                out = recursive_filter(out, dx, dy, s, 1)
        return np.abs(_from_t(out, src) - ref).max()

    sched = iteration_sigmas(sigma_s, n)
    assert by_iteration(sched) <= CV_ATOL
    assert by_iteration(sched[::-1]) > 1e-2  # coarse-to-fine order matters
    assert by_iteration([sigma_s] * n) > 1e-2  # the schedule is not constant
    assert by_iteration(sched, vertical_first=True) > 1e-2  # horizontal first
    ratio = sigma_s / sigma_r
    l2x = 1 + ratio * (g[..., 1:] - g[..., :-1]).pow(2).sum(1, keepdim=True).sqrt()
    l2y = 1 + ratio * (g[..., 1:, :] - g[..., :-1, :]).pow(2).sum(1, keepdim=True).sqrt()
    assert by_iteration(sched, l2x, l2y) > 1e-2  # channels add their |differences| (L1), not L2
    for ds, dr in ((1.01, 1.0), (1.0, 1.01)):  # 1% off either sigma is also caught
        near = _from_t(dt_filter(f, g, sigma_s * ds, sigma_r * dr, n), src)
        assert np.abs(near - ref).max() > 100 * CV_ATOL
