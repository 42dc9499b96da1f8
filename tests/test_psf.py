"""Disk / Gaussian PSF kernels and image blurring (dbd_lightning.ops.psf)."""

import math

import numpy as np
import pytest

from dbd_lightning.ops.psf import (
    blur,
    blur_with_psf,
    disk_kernel,
    gaussian_kernel,
    kernel_half_size,
    psf_kernel,
)


@pytest.mark.parametrize("r", [0.0, 0.3, 0.5])
def test_small_disk_is_identity(r):
    k = disk_kernel(r)
    assert k.shape == (1, 1) and k[0, 0] == 1.0


@pytest.mark.parametrize("r", [0.51, 0.75, 1.0, 1.5, 2.5, 4.0, 6.0, 7.3, 12.0])
def test_disk_sums_to_one_with_right_support(r):
    k = disk_kernel(r)
    assert kernel_half_size(r) == math.ceil(r + 0.5) - 1
    h = k.shape[0] // 2
    assert h <= kernel_half_size(r)
    assert k.dtype == np.float32 and k.shape == (2 * h + 1, 2 * h + 1)
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(k, k.T, atol=1e-7)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-7)
    y, x = np.mgrid[-h : h + 1, -h : h + 1]
    # distance from the disk centre to the nearest / farthest point of each pixel square
    near = np.hypot(np.maximum(np.abs(x) - 0.5, 0), np.maximum(np.abs(y) - 0.5, 0))
    far = np.hypot(np.abs(x) + 0.5, np.abs(y) + 0.5)
    assert np.all(k[near >= r] == 0)  # pixels outside the disk get nothing
    assert np.all(k[near < r - 0.1] > 0)  # pixels the disk really overlaps get something
    inner = far <= r  # pixels fully inside: all the same (maximal) weight
    if inner.any():
        np.testing.assert_allclose(k[inner], k.max(), rtol=1e-6)
    assert k[h, 0] > 0  # no empty outer ring


@pytest.mark.parametrize("r", [2.0, 3.5, 6.0, 10.0])
def test_disk_centre_weight_is_inverse_area(r):
    k = disk_kernel(r)
    h = kernel_half_size(r)
    assert k[h, h] == pytest.approx(1.0 / (math.pi * r * r), rel=0.01)


@pytest.mark.parametrize("r", [2.0, 3.0, 4.5, 6.0])
def test_disk_blurred_step_edge_has_width_2r(r):
    img = np.zeros((64, 64), np.float32)
    img[:, 32:] = 1.0
    out = blur(img, disk_kernel(r))
    row = out[32]
    width = int(np.count_nonzero((row > 0.01) & (row < 0.99)))
    assert abs(width - 2 * r) <= 1
    assert row[32 - int(r) - 2] == pytest.approx(0.0, abs=1e-6)
    assert row[31 + int(r) + 2] == pytest.approx(1.0, abs=1e-6)
    # the step is blurred symmetrically: the two middle pixels sum to 1
    assert row[31] + row[32] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("sigma", [0.8, 1.0, 2.0, 3.5])
def test_gaussian_kernel_variance_is_sigma_squared(sigma):
    k = gaussian_kernel(sigma).astype(np.float64)
    h = k.shape[0] // 2
    assert k.sum() == pytest.approx(1.0, abs=1e-6)
    y, x = np.mgrid[-h : h + 1, -h : h + 1]
    assert (k * x * x).sum() == pytest.approx(sigma**2, rel=1e-2)
    assert (k * y * y).sum() == pytest.approx(sigma**2, rel=1e-2)
    assert (k * x).sum() == pytest.approx(0.0, abs=1e-9)


def test_btbnet_gaussian_is_7x7():
    k = gaussian_kernel(2.0, half_size=3)
    assert k.shape == (7, 7) and k.sum() == pytest.approx(1.0, abs=1e-6)
    assert k[3, 3] == k.max()


def test_psf_kernel_kinds_and_errors():
    np.testing.assert_array_equal(psf_kernel("disk", 3.0), disk_kernel(3.0))
    g = psf_kernel("gaussian", 4.0, sigma_per_radius=0.5)
    np.testing.assert_array_equal(g, gaussian_kernel(2.0))
    assert psf_kernel("gaussian", 0.4).shape == (1, 1)
    with pytest.raises(ValueError, match="disk, gaussian"):
        psf_kernel("box", 2.0)
    with pytest.raises(ValueError):
        disk_kernel(-1.0)
    with pytest.raises(ValueError):
        gaussian_kernel(float("nan"))


def test_kernels_are_cached_read_only():
    k = disk_kernel(2.5)
    assert k is disk_kernel(2.5)
    with pytest.raises(ValueError):
        k[0, 0] = 1.0


@pytest.mark.parametrize("shape", [(40, 50), (40, 50, 1), (40, 50, 3), (40, 50, 4), (40, 50, 6)])
@pytest.mark.parametrize("r", [0.4, 2.0, 9.0])
def test_blur_keeps_shape_dtype_and_constants(shape, r):
    img = np.full(shape, 0.7, np.float64)
    out = blur(img, disk_kernel(r))
    assert out.shape == shape and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.7, atol=1e-5)


def test_blur_rejects_bad_input():
    with pytest.raises(ValueError):
        blur(np.zeros((4, 4, 3, 2)), disk_kernel(1.0))
    with pytest.raises(ValueError):
        blur(np.zeros((4, 4)), np.ones(3))


def test_blur_does_not_alias_input():
    img = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    out = blur(img, disk_kernel(0.2))
    out[0, 0] = -1
    assert img[0, 0] != -1


def test_multires_blur_matches_moments_and_direct_blur():
    r = 10.0
    delta = np.zeros((96, 96), np.float32)
    delta[48, 48] = 1.0
    out = blur_with_psf(delta, r, "disk", direct_max_radius=4.0)
    assert out.shape == delta.shape and out.sum() == pytest.approx(1.0, rel=1e-3)
    y, x = np.mgrid[0:96, 0:96]
    cy, cx = (out * y).sum(), (out * x).sum()
    var_x = (out * (x - cx) ** 2).sum()
    var_y = (out * (y - cy) ** 2).sum()
    assert var_x == pytest.approx(r * r / 4.0, rel=0.1)
    assert var_y == pytest.approx(r * r / 4.0, rel=0.1)
    # same step-edge profile as the exact disk blur, up to a few percent
    step = np.zeros((64, 64, 3), np.float32)
    step[:, 32:] = 1.0
    fast = blur_with_psf(step, r, direct_max_radius=4.0)
    exact = blur_with_psf(step, r, direct_max_radius=None)
    assert fast.shape == step.shape
    assert np.abs(fast - exact).max() < 0.06
    np.testing.assert_allclose(
        blur_with_psf(np.full((30, 41, 4), 0.25), 9.0, direct_max_radius=4.0), 0.25, atol=1e-5
    )


@pytest.mark.parametrize("kind,k", [("disk", 0.5), ("gaussian", 0.5), ("gaussian", 0.35)])
def test_multires_blur_keeps_the_psf_variance(kind, k):
    r = 12.0
    delta = np.zeros((128, 128), np.float32)
    delta[64, 64] = 1.0
    out = blur_with_psf(delta, r, kind, sigma_per_radius=k, direct_max_radius=4.0).astype(np.float64)
    x = np.arange(128)
    px = out.sum(axis=0)
    cx = (px * x).sum()
    expected = r * r / 4.0 if kind == "disk" else (k * r) ** 2
    assert (px * (x - cx) ** 2).sum() == pytest.approx(expected, rel=0.1)
