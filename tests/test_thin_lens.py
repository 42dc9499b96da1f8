"""Thin-lens circle of confusion (dbd_lightning.ops.thin_lens)."""

import numpy as np
import pytest

from dbd_lightning.ops.thin_lens import (
    coc_diameter_m,
    coc_diameter_px,
    coc_radius_px,
    depth_of_field_limits,
    signed_coc_radius_px,
)

# a 50 mm f/2 lens focused at 2 m on a 36 mm wide sensor imaged 320 px wide
F, N, SF, SW, W = 0.050, 2.0, 2.0, 0.036, 320


def test_in_focus_depth_has_zero_radius():
    assert coc_radius_px(SF, F, N, SF, SW, W) == 0.0
    assert signed_coc_radius_px(SF, F, N, SF, SW, W) == 0.0


def test_hand_computed_value():
    # c = f^2 |d - s_f| / (N d (s_f - f)) = 0.0025 * 2 / (2 * 4 * 1.95) = 0.005 / 15.6 m
    c = 0.005 / 15.6
    assert coc_diameter_m(4.0, F, N, SF) == pytest.approx(c, rel=1e-12)
    # one pixel = 0.036 / 320 m  ->  c_px = c * 320 / 0.036 = 2.849002849 px
    assert coc_diameter_px(4.0, F, N, SF, SW, W) == pytest.approx(2.849002849002849, rel=1e-12)
    assert coc_radius_px(4.0, F, N, SF, SW, W) == pytest.approx(1.4245014245014245, rel=1e-12)
    # in front: d = 1 m -> c = 0.0025 * 1 / (2 * 1 * 1.95) = 6.41025641e-4 m -> r = 2.849002849 px
    assert coc_radius_px(1.0, F, N, SF, SW, W) == pytest.approx(0.0025 / 3.9 * W / SW / 2, rel=1e-12)
    assert coc_radius_px(1.0, F, N, SF, SW, W) == pytest.approx(2.849002849002849, rel=1e-12)


def test_radius_grows_with_distance_from_focus_plane():
    behind = np.array([2.0, 2.5, 3.0, 5.0, 10.0, 100.0])
    front = np.array([2.0, 1.8, 1.5, 1.0, 0.5, 0.2])
    rb = coc_radius_px(behind, F, N, SF, SW, W)
    rf = coc_radius_px(front, F, N, SF, SW, W)
    assert rb.shape == behind.shape
    assert np.all(np.diff(rb) > 0) and np.all(np.diff(rf) > 0)
    # far limit: f^2 / (N (s_f - f)) * W / w_s / 2
    assert coc_radius_px(1e9, F, N, SF, SW, W) == pytest.approx(0.0025 / (2 * 1.95) * W / SW / 2, rel=1e-6)


def test_scaling_with_aperture_and_image_width():
    r = coc_radius_px(5.0, F, N, SF, SW, W)
    assert coc_radius_px(5.0, F, 2 * N, SF, SW, W) == pytest.approx(r / 2)
    assert coc_radius_px(5.0, F, N, SF, SW, 2 * W) == pytest.approx(2 * r)
    assert coc_radius_px(5.0, F, N, SF, 2 * SW, W) == pytest.approx(r / 2)


def test_signed_radius_is_affine_in_inverse_depth():
    d = np.array([[0.5, 1.0], [4.0, 20.0]])
    q = signed_coc_radius_px(d, F, N, SF, SW, W)
    np.testing.assert_allclose(np.abs(q), coc_radius_px(d, F, N, SF, SW, W), rtol=1e-12)
    assert q[0, 0] < 0 < q[1, 1]
    inv = np.linspace(0.05, 2.0, 7)
    qs = signed_coc_radius_px(1.0 / inv, F, N, SF, SW, W)
    np.testing.assert_allclose(np.diff(qs, 2), 0.0, atol=1e-9)


def test_depth_of_field_limits_hit_the_max_coc():
    c_max = 2 * SW / W  # 2 px
    near, far = depth_of_field_limits(F, N, SF, c_max)
    assert near < SF < far
    assert coc_diameter_m(near, F, N, SF) == pytest.approx(c_max, rel=1e-9)
    assert coc_diameter_m(far, F, N, SF) == pytest.approx(c_max, rel=1e-9)
    assert depth_of_field_limits(0.02, 16, 3.0, 1e-4)[1] == float("inf")  # beyond hyperfocal


@pytest.mark.parametrize(
    "args",
    [
        (1.0, F, N, 0.04),  # focus nearer than the focal length
        (0.0, F, N, SF),  # non-positive depth
        (1.0, F, 0.0, SF),  # f-number
        (1.0, -F, N, SF),
    ],
)
def test_bad_arguments_raise(args):
    with pytest.raises(ValueError):
        coc_diameter_m(*args)
    with pytest.raises(ValueError):
        coc_radius_px(1.0, F, N, SF, 0.0, W)
