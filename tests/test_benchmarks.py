"""Real-benchmark loaders: layouts, splits, polarity, counts, the real samples, configs end to end."""

import shutil

import numpy as np
import pytest
from PIL import Image

from dbd_lightning.data.benchmarks import CTCUG, CUHK, DUT, EBD, BlurConversion, Lytro, read_blur_map
from dbd_lightning.data.benchmarks.splits import cuhk_te1_entries, read_split_file
from dbd_lightning.data.folder import DatasetLayoutError
from dbd_lightning.train import run

from .benchmark_trees import FIXTURES, focus_mask, make_ctcug, make_cuhk, make_dut, make_ebd, write_pair
from .helpers import compose_cfg


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    make_cuhk(root / "CUHK")
    make_dut(root / "DUT")
    return root


def test_shipped_te1_list_is_btbnets_100():
    entries = cuhk_te1_entries()
    assert len(entries) == 100 and len({n for _, n in entries}) == 100
    assert entries[0] == ("1", "out_of_focus0037")
    assert all(name.startswith("out_of_focus") for _, name in entries)


def test_cuhk_splits_counts_and_polarity(data_root):
    te1, tr1, full = (CUHK(data_root / "CUHK", split=s) for s in ("te1", "tr1", "all"))
    assert (len(te1), len(tr1), len(full)) == (100, 604, 704)
    for ds in (te1, tr1, full):
        assert ds.layout_issues("full") == []
    names_te = {p.stem.lower() for p, _ in te1.pairs}
    assert names_te == {n for _, n in cuhk_te1_entries()}  # resolved whatever the .jpg/.JPG case
    assert not names_te & {p.stem.lower() for p, _ in tr1.pairs}
    assert not any(p.stem.startswith("motion") for p, _ in full.pairs)  # motion half ignored
    s = te1[0]
    assert te1.polarity == "white_blurred" and np.array_equal(s["mask"], focus_mask())  # white = blurred on disk
    assert s["image"].shape == (8, 8, 3) and s["image"].dtype == np.uint8


def test_cuhk_split2_needs_a_list(tmp_path, data_root):
    ds = CUHK(data_root / "CUHK", split="te2")
    assert len(ds) == 0
    assert [i.kind for i in ds.issues] == ["split_list", "count"]
    assert "CUHK TE-2 needs the TE-2 list" in ds.issues[0].message and "data.cuhk_split2_file" in ds.issues[0].message
    missing = CUHK(data_root / "CUHK", split="tr2", split_file=tmp_path / "nope.txt")
    assert f"split list file not found: {tmp_path / 'nope.txt'}" in missing.issues[0].message
    with pytest.raises(DatasetLayoutError, match="CUHK TE-2 needs the TE-2 list"):
        ds.check()
    names = sorted(p.stem for p, _ in CUHK(data_root / "CUHK", split="tr1").pairs)[:100]
    lst = tmp_path / "te2.txt"
    lst.write_text("\n".join([f"{n.upper()}.JPG" for n in names[:50]] + [f"{i}.bmp--{n}.jpg" for i, n in
                                                                          enumerate(names[50:])]) + "\n")
    assert read_split_file(lst)[0] == names[0].lower()
    te2, tr2 = CUHK(data_root / "CUHK", "te2", split_file=lst), CUHK(data_root / "CUHK", "tr2", split_file=lst)
    assert (len(te2), len(tr2)) == (100, 604) and te2.issues == tr2.issues == []


def test_dut_ctcug_ebd_layouts(tmp_path, data_root):
    assert len(DUT(data_root / "DUT", "train")) == 600 and len(DUT(data_root / "DUT", "test")) == 500
    dut = DUT(data_root / "DUT", "test")
    assert dut.layout_issues("headers") == [] and np.array_equal(dut[3]["mask"], focus_mask())
    ctcug = CTCUG(make_ctcug(tmp_path / "CTCUG"))
    assert len(ctcug) == 150 and ctcug.layout_issues() == [] and np.array_equal(ctcug[0]["mask"], focus_mask())
    ebd_root = make_ebd(tmp_path / "EBD")
    ebd, ebd1305 = EBD(ebd_root, "all"), EBD(ebd_root, "first1305")
    assert (len(ebd), len(ebd1305)) == (1605, 1305) and ebd.issues == ebd1305.issues == []
    assert [p.stem for p, _ in ebd1305.pairs][:3] == ["1", "2", "3"] and ebd1305.pairs[-1][0].stem == "1305"
    assert np.array_equal(ebd[0]["mask"], focus_mask())
    # DUT test also accepted in the release's folder names
    write_pair(tmp_path / "DUT2" / "DUT500S-Testing" / "1.jpg", tmp_path / "DUT2" / "DUT500GT-Testing" / "1.png", True)
    assert len(DUT(tmp_path / "DUT2", "test", expected_count=1)) == 1


def test_unknown_split_and_polarity_fail_clearly(data_root):
    with pytest.raises(ValueError, match=r"CUHK: unknown split 'te3'; expected one of \['all', 'tr1'"):
        CUHK(data_root / "CUHK", split="te3")
    with pytest.raises(ValueError, match="DUT: unknown polarity 'white'"):
        DUT(data_root / "DUT", "test", polarity="white")


def test_wrong_polarity_inverts_and_override_fixes_it(tmp_path):
    # a DUT-style copy (white = in focus) read as CTCUG (white = blurred) gives the inverted mask ...
    for i in range(1, 3):
        write_pair(tmp_path / "CTCUG_images" / f"{i}.jpg", tmp_path / "CTCUG_gt" / f"{i}.png", white_in_focus=True)
    wrong = CTCUG(tmp_path, expected_count=2)
    assert np.array_equal(wrong[0]["mask"], 1 - focus_mask())
    # ... and data.sets.ctcug.polarity=white_in_focus reads it right
    assert np.array_equal(CTCUG(tmp_path, polarity="white_in_focus", expected_count=2)[0]["mask"], focus_mask())


def test_rgba_png_image_loads_as_rgb(tmp_path):
    (tmp_path / "image").mkdir()
    rgba = np.dstack([np.full((8, 8, 3), 70, np.uint8), np.full((8, 8), 10, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "image" / "1.png")
    (tmp_path / "gt").mkdir()
    Image.fromarray(focus_mask() * 255).save(tmp_path / "gt" / "1.png")
    ds = EBD(tmp_path, expected_count=1)
    s = ds[0]
    assert s["image"].shape == (8, 8, 3) and (s["image"] == 70).all() and ds.layout_issues("full") == []


def test_exif_orientation_applies_to_image_and_mask_alike(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 4x6 (HxW), displayed rotated: 6x4
    (tmp_path / "image").mkdir()
    (tmp_path / "gt").mkdir()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "image" / "1.jpg", exif=exif)
    m = np.zeros((4, 6), np.uint8)
    m[:, :3] = 255
    Image.fromarray(m).save(tmp_path / "gt" / "1.png", exif=exif)
    ds = EBD(tmp_path, expected_count=1)
    s = ds[0]
    assert s["image"].shape == (6, 4, 3) and s["mask"].shape == (6, 4)
    assert ds.layout_issues("full") == []  # the check sees the oriented sizes too
    # a GT without the tag is a size mismatch, reported with both sizes
    Image.fromarray(m).save(tmp_path / "gt" / "1.png")
    issues = EBD(tmp_path, expected_count=1).layout_issues("headers")
    assert [i.kind for i in issues] == ["size_mismatch"]
    assert "is 4x6 but GT" in issues[0].message and "is 6x4 (WxH)" in issues[0].message


# ---- the real samples (copies of ../data/real_mini in tests/fixtures) -------------------------------------
# In-focus fractions computed once with a direct PIL read, (np.asarray(Image.open(gt)) >= 128).mean(); these
# copies are white = in focus: in every one of the 10 images the mean |Laplacian| inside the white region is
# 4-10x the one outside (sharp = in focus), see test_real_sample_white_region_is_the_sharp_one.
CUHK_FRACTIONS = [0.40896, 0.14627, 0.14413, 0.70733, 0.51101]
DUT_FRACTIONS = [0.25472, 0.35544, 0.46939, 0.20868, 0.39945]


def _real(name, tmp_path):
    return shutil.copytree(FIXTURES / name, tmp_path / name)


def test_real_cuhk_sample_btbnet_names_load_white_in_focus(tmp_path):
    ds = CUHK(_real("cuhk_te_sample", tmp_path), split="te1", expected_count=5)
    assert ds.renamed and ds.polarity == "white_in_focus"  # BTBNet's k.bmp copies are inverted w.r.t. Shi et al.
    assert [i.kind for i in ds.layout_issues("full")] == ["split_list"]  # 95 of the 100 are not in the sample
    fractions = [float(ds[i]["mask"].mean()) for i in range(5)]
    assert fractions == pytest.approx(CUHK_FRACTIONS, abs=1e-5)
    for i, (_, gt) in enumerate(ds.pairs):
        assert np.array_equal(ds[i]["mask"], (np.asarray(Image.open(gt)) >= 128).astype(np.uint8))
        assert ds[i]["image"].shape == (320, 320, 3)


def test_real_dut_sample_loads_white_in_focus(tmp_path):
    root = tmp_path / "DUT"
    shutil.copytree(FIXTURES / "dut_te_sample", root / "test")
    ds = DUT(root, "test", expected_count=5)
    assert ds.layout_issues("full") == []
    assert [float(ds[i]["mask"].mean()) for i in range(5)] == pytest.approx(DUT_FRACTIONS, abs=1e-5)


def test_real_sample_white_region_is_the_sharp_one():
    from scipy import ndimage

    for name in ("cuhk_te_sample", "dut_te_sample"):
        for i in range(1, 6):
            gt = next((FIXTURES / name / "gt").glob(f"{i}.*"))
            img = next((FIXTURES / name / "image").glob(f"{i}.*"))
            white = np.asarray(Image.open(gt)) >= 128
            energy = np.abs(ndimage.laplace(np.asarray(Image.open(img).convert("L"), float)))
            assert energy[white].mean() > 2.5 * energy[~white].mean(), (name, i)


def test_real_lytro_sample_radius_maps_and_conversion(tmp_path):
    ds = Lytro(_real("lytro_sample", tmp_path), with_sigma=True, expected_count=3)
    assert ds.layout_issues("full") == [] and [p.stem for p, _ in ds.pairs] == ["image_01", "image_05", "image_22"]
    s = ds[0]
    assert s["image"].shape == (360, 360, 3) and s["radius"].shape == (360, 360)
    assert s["radius"].min() == 0.5 and s["radius"].max() == 3.5  # disk radius in px, 0.25 steps
    assert np.array_equal(s["mask"], (s["radius"] <= 0.5).astype(np.uint8))
    conv = ds.conversion
    assert conv.radius_to_sigma(np.array([0.5, 6.0])).tolist() == pytest.approx([0.3, 3.275])
    assert conv.sigma_to_radius(1.65) == pytest.approx(3.0)
    assert s["sigma"][s["radius"] == 3.0] == pytest.approx(1.65)
    assert isinstance(BlurConversion.from_file(ds.conversion_file), BlurConversion)
    with pytest.raises(KeyError, match=r"no variable 'blurMap' \(it holds \['convertion'\]\)"):
        read_blur_map(ds.conversion_file)
    (tmp_path / "lytro_sample" / "map_05.mat").unlink()
    broken = Lytro(tmp_path / "lytro_sample", expected_count=3)
    assert "1 image(s) in" in broken.issues[0].message and "['image_05.png']" in broken.issues[0].message


# ---- configs end to end ----------------------------------------------------------------------------------
TINY_REAL = ["data.image_size=[32,32]", "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0",
             "model=dffnet_small", "logger=none", "++trainer.fast_dev_run=true"]


def test_combined_config_trains_and_tests_on_two_sets(tmp_path, data_root):
    cfg = compose_cfg(tmp_path, ["data=cuhk_tr1_dut_tr", f"data.root={data_root}", *TINY_REAL])
    assert cfg.data.monitor == "val/cuhk_te1/mae"
    metrics = run(cfg)
    for dataset in ("cuhk_te1", "dut_te"):
        for metric in ("mae", "fbeta", "iou"):
            assert f"test/{dataset}/{metric}" in metrics
    assert "train/loss" in metrics and "val/cuhk_te1/mae" in metrics
    assert "| cuhk_te1 |" in (tmp_path / "results.md").read_text()


def test_real_sample_as_a_test_config(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "dut_te_sample", root / "DUT" / "test")
    make_dut(root / "DUT", n_train=4, n_test=0)
    cfg = compose_cfg(tmp_path, ["data=dut_tr", f"data.root={root}", "++data.sets.dut_te.expected_count=5",
                                 "++data.sets.dut_tr.expected_count=4", *TINY_REAL])
    metrics = run(cfg)
    assert 0 <= metrics["test/dut_te/mae"] <= 1
