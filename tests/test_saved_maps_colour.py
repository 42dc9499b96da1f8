"""``read_map`` (eval's saved-maps source) refuses colour maps by name instead of reading their luminance
(issue 26: a red-on-black heat map read as 30 % "in focus" everywhere, silently)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dbd_lightning.reports.saved_maps import SavedMapError, read_map

LEVELS = np.array([[0, 64, 128, 255]], np.uint8)


def test_grey_and_grey_stored_as_rgb_read_the_same(tmp_path):
    Image.fromarray(LEVELS).save(tmp_path / "grey.png")
    Image.fromarray(np.repeat(LEVELS[..., None], 3, axis=2)).save(tmp_path / "rgb.png")
    Image.fromarray(LEVELS.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    expected = np.array([[0, 64 / 255, 128 / 255, 1]], np.float32)
    for name in ("grey.png", "rgb.png", "deep.png"):
        np.testing.assert_allclose(read_map(tmp_path / name), expected, atol=1e-6, err_msg=name)


def test_a_colour_map_is_refused_by_name(tmp_path):
    heat = np.zeros((8, 8, 3), np.uint8)
    heat[:, :4, 0] = 255  # red = in focus on black: luminance 76 would read as 0.30 everywhere
    Image.fromarray(heat).save(tmp_path / "img_1.png")
    with pytest.raises(SavedMapError, match=r"img_1\.png: a colour saved map \(50\.0% of its pixels coloured, "
                                            r"commonest RGB \(255, 0, 0\)\)") as err:
        read_map(tmp_path / "img_1.png")
    assert "grey image" in str(err.value) and ".npy" in str(err.value)


def test_channels_that_differ_slightly_are_colour_too(tmp_path):
    rgb = np.repeat(LEVELS[..., None], 3, axis=2).repeat(4, axis=0)
    rgb[..., 2] = np.clip(rgb[..., 2].astype(int) + 60, 0, 255)  # a blue tint: channels differ by 60
    Image.fromarray(rgb).save(tmp_path / "tinted.png")
    with pytest.raises(SavedMapError, match="tinted.png"):
        read_map(tmp_path / "tinted.png")


def test_transparent_map_is_refused(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 128
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    with pytest.raises(SavedMapError, match=r"alpha\.png.*transparent"):
        read_map(tmp_path / "alpha.png")
