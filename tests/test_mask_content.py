"""GT masks and edge maps whose pixels have no single reading are named, never read silently wrong
(``data/masks.py``); legal one-class masks and coloured edge visualisations read as drawn."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dbd_lightning.data.io import ImageReadError, read_mask
from dbd_lightning.data.masks import MaskContentError, read_edges
from dbd_lightning.models.karaali.edge_maps import EdgeMapError, match_edge_maps, read_edge_map
from dbd_lightning.utils.errors import UserError

from .test_bad_input_data_predict import make_folder, run_check


def _save(path, arr, **kw):
    Image.fromarray(arr).save(path, **kw)
    return path


def _red_on_black(h=8, w=10):
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2, 0] = 255  # in focus drawn pure red: luminance 76 < 128
    return rgb


# ------------------------------------------------------------------ masks
def test_colour_mask_is_named_with_the_fix(tmp_path):
    path = _save(tmp_path / "red.png", _red_on_black())
    with pytest.raises(MaskContentError) as err:
        read_mask(path)
    msg = str(err.value)
    assert isinstance(err.value, UserError) and isinstance(err.value, ImageReadError)
    assert str(path) in msg and "colour" in msg and "50.0% of its pixels" in msg and "RGB (255, 0, 0)" in msg
    assert "white_in_focus" in msg and "white_blurred" in msg  # the fix names data.polarity's values


def test_colour_palette_mask_is_named_but_a_grey_palette_reads(tmp_path):
    pal = Image.fromarray(np.array([[0, 1, 1], [0, 0, 1]], np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)  # index 1 = green
    pal.save(tmp_path / "green.png")
    with pytest.raises(MaskContentError, match="green.png"):
        read_mask(tmp_path / "green.png")
    pal.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    pal.save(tmp_path / "grey.png")
    assert read_mask(tmp_path / "grey.png").tolist() == [[0, 1, 1], [0, 0, 1]]


def test_grey_mask_stored_as_rgb_with_compression_noise_reads_as_grey(tmp_path):
    grey = np.array([[0, 40, 127, 128, 200, 255]], np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.int16)
    rgb[..., 1] += np.array([3, 4, -2, 0, -4, 0], np.int16)  # JPEG-like chroma noise, channels within 24
    path = _save(tmp_path / "rgb_grey.png", np.clip(rgb, 0, 255).astype(np.uint8))
    assert read_mask(path).tolist() == [[0, 0, 0, 1, 1, 1]]
    assert read_mask(path, "white_blurred").tolist() == [[1, 1, 1, 0, 0, 0]]


def test_transparent_mask_is_named(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2, :, :3] = 255
    rgba[..., 3] = 255
    rgba[3, 3, 3] = 0  # one transparent pixel
    path = _save(tmp_path / "alpha.png", rgba)
    with pytest.raises(MaskContentError, match=r"alpha.png: the GT mask has transparent pixels \(6.2% of them"):
        read_mask(path)
    rgba[3, 3, 3] = 255  # fully opaque: alpha carries nothing, the mask reads
    assert read_mask(_save(tmp_path / "opaque.png", rgba)).tolist() == [[1] * 4] * 2 + [[0] * 4] * 2


@pytest.mark.parametrize("values, dtype, side", [
    ((0, 1), np.uint8, "black"),         # a 0/1 label map read at 128 of 255
    ((0, 255), np.uint16, "black"),      # 8-bit values in a 16-bit file (half range 32767.5)
    ((130, 255), np.uint8, "white"),     # a grey "blurred" level above half range
])
def test_mask_with_two_levels_read_as_one_class_is_named(tmp_path, values, dtype, side):
    arr = np.full((10, 10), values[0], dtype)
    arr[:4] = values[1]  # 40 % of the pixels at the second level
    path = _save(tmp_path / "two.png", arr)
    with pytest.raises(MaskContentError) as err:
        read_mask(path)
    msg = str(err.value)
    assert str(path) in msg and f"reads {side}" in msg and "40.0% of them hold level" in msg
    assert "0/1 label map" in msg


@pytest.mark.parametrize("value, polarity, expected", [
    (255, "white_in_focus", 1), (0, "white_in_focus", 0), (255, "white_blurred", 0), (0, "white_blurred", 1)])
def test_genuinely_all_white_or_all_black_masks_are_legal(tmp_path, value, polarity, expected):
    path = _save(tmp_path / "flat.png", np.full((6, 7), value, np.uint8))
    assert read_mask(path, polarity).tolist() == [[expected] * 7] * 6


def test_a_few_stray_levels_on_a_one_class_mask_are_legal(tmp_path):
    arr = np.full((20, 20), 255, np.uint8)
    arr[0, :2] = 200  # 2 of 400 pixels (0.5 %), both still white: not a second class
    assert read_mask(_save(tmp_path / "w.png", arr)).sum() == 400
    arr[0, :5] = 200  # 5 of 400 = 1.25 % > 1 %: named
    with pytest.raises(MaskContentError, match="1.2% of them hold level 200"):
        read_mask(_save(tmp_path / "w2.png", arr))


def test_folder_sample_read_raises_the_user_error(tmp_path):
    from dbd_lightning.data.folder import ImageMaskFolder

    root = make_folder(tmp_path / "set", n=2)
    _save(root / "gt" / "1.png", _red_on_black(32, 40))
    ds = ImageMaskFolder(root)
    assert ds[0]["mask"].sum() > 0
    with pytest.raises(MaskContentError, match="1.png: a colour GT mask"):
        ds[1]


# ------------------------------------------------------------------ the data check: one report
def test_data_check_reports_colour_and_collapsed_masks_in_its_one_report(tmp_path, capsys):
    root = make_folder(tmp_path / "set", n=4)
    _save(root / "gt" / "1.png", _red_on_black(32, 40))
    binary01 = np.zeros((32, 40), np.uint8)
    binary01[:, :20] = 1
    _save(root / "gt" / "2.png", binary01)
    _save(root / "gt" / "3.png", np.full((32, 40), 255, np.uint8))  # all in focus: legal, not reported
    code, text = run_check(capsys, root)
    assert code == 2, text
    assert "data layout check: 1 problem(s)" in text
    assert "mask_content: 2 of 4 checked GT files cannot be read as masks" in text
    assert f"{root}/gt/1.png: a colour GT mask" in text and f"{root}/gt/2.png: every pixel" in text
    assert "3.png" not in text and "Traceback" not in text


def test_the_datamodule_refuses_a_colour_mask_before_training(tmp_path):
    from dbd_lightning.data.datamodule import DBDDataModule
    from dbd_lightning.data.folder import DatasetLayoutError, ImageMaskFolder
    from dbd_lightning.data.transforms import build_eval_transform

    root = make_folder(tmp_path / "set", n=3)
    for i in range(3):
        _save(root / "gt" / f"{i}.png", _red_on_black(32, 40))
    with pytest.raises(DatasetLayoutError) as err:
        DBDDataModule(test={"folder": ImageMaskFolder(root)}, eval_transform=build_eval_transform((32, 32)))
    assert "mask_content: 3 of 3 checked GT files" in str(err.value) and "0.png: a colour GT mask" in str(err.value)


# ------------------------------------------------------------------ edge maps: nonzero = edge
def _colour_edges(h=12, w=12):
    """The Karaali authors' kind of visualisation: edges in colours on black, no white."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[3, 2:10] = (255, 0, 0)    # pattern edge, red (luminance 76)
    rgb[2:10, 8] = (0, 0, 255)    # depth edge, blue (luminance 29)
    rgb[10, 1:4] = (0, 90, 0)     # a dim green (luminance 53)
    return rgb


def test_colour_edge_map_reads_every_coloured_pixel_as_an_edge(tmp_path):
    rgb = _colour_edges()
    path = _save(tmp_path / "edge_01.png", rgb)
    expected = np.zeros((12, 12), bool)
    expected[3, 2:10] = expected[2:10, 8] = expected[10, 1:4] = True
    assert expected.sum() == 8 + 7 + 3
    assert np.array_equal(read_edges(path), expected)
    assert np.array_equal(read_edge_map(path, (12, 12), "image_01.png"), expected)


def test_grey_edge_map_is_nonzero_not_half_range(tmp_path):
    arr = np.zeros((5, 5), np.uint8)
    arr[1, 1], arr[2, 2], arr[3, 3] = 1, 100, 255
    assert np.argwhere(read_edges(_save(tmp_path / "e.png", arr))).tolist() == [[1, 1], [2, 2], [3, 3]]
    assert not read_edges(_save(tmp_path / "none.png", np.zeros((5, 5), np.uint8))).any()  # no edge: legal


def test_edge_map_on_a_non_black_background_is_named(tmp_path):
    arr = np.full((10, 10), 128, np.uint8)  # edges drawn white on grey: every pixel nonzero
    arr[5, :] = 255
    with pytest.raises(MaskContentError, match=r"on.png: no pixel of this edge map is zero .*10.0% of its pixels"):
        read_edges(_save(tmp_path / "on.png", arr))
    assert read_edges(_save(tmp_path / "white.png", np.full((4, 4), 255, np.uint8))).all()  # one level: legal


def test_jpeg_edge_map_is_named(tmp_path):
    path = _save(tmp_path / "edge_01.jpg", np.zeros((8, 8), np.uint8))
    with pytest.raises(MaskContentError, match="edge_01.jpg: a JPEG edge map"):
        read_edges(path)


def test_match_edge_maps_names_unusable_maps_before_anything_runs(tmp_path):
    (tmp_path / "edges").mkdir()
    images = []
    for stem in ("image_01", "image_02", "image_03"):
        images.append(_save(tmp_path / f"{stem}.png", np.zeros((12, 12, 3), np.uint8)))
    _save(tmp_path / "edges" / "edge_01.png", _colour_edges())  # fine: coloured edges on black
    _save(tmp_path / "edges" / "edge_02.png", np.full((12, 12), 7, np.uint8) + np.eye(12, dtype=np.uint8) * 200)
    _save(tmp_path / "edges" / "edge_03.jpg", np.zeros((12, 12), np.uint8))
    with pytest.raises(EdgeMapError) as err:
        match_edge_maps(tmp_path / "edges", images)
    msg = str(err.value)
    assert "edge_02.png: no pixel of this edge map is zero" in msg and "edge_03.jpg: a JPEG edge map" in msg
    assert "edge_01.png" not in msg
    assert match_edge_maps(tmp_path / "edges", images[:1]) == {images[0]: tmp_path / "edges" / "edge_01.png"}
