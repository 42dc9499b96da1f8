"""The layout check (one report of everything wrong), its CLI, and the prepare (import) command."""

import warnings

import numpy as np
import pytest
from PIL import Image

from dbd_lightning.data import check as check_cli
from dbd_lightning.data import prepare as prepare_cli
from dbd_lightning.data.benchmarks import CTCUG, DUT, BenchmarkDataModule
from dbd_lightning.data.folder import DatasetLayoutError
from dbd_lightning.data.transforms import build_eval_transform

from .benchmark_trees import make_ctcug, make_dut, write_pair


def broken_ctcug(root):
    """150 pairs, then: one GT removed, one extra GT, one size mismatch, one corrupt JPEG."""
    make_ctcug(root)
    (root / "CTCUG_gt" / "7.png").unlink()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "CTCUG_gt" / "extra.png")
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(root / "CTCUG_gt" / "9.png")
    (root / "CTCUG_images" / "11.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_one_report_lists_every_problem(tmp_path):
    ds = CTCUG(broken_ctcug(tmp_path / "CTCUG"))
    issues = ds.layout_issues("headers")
    assert sorted(i.kind for i in issues) == ["count", "size_mismatch", "unpaired", "unpaired", "unreadable"]
    text = "\n".join(map(str, issues))
    assert f"[CTCUG] unpaired: 1 image(s) in {tmp_path}/CTCUG/CTCUG_images without GT in " in text
    assert "['7.jpg']" in text and "1 GT file(s) in" in text and "['extra.png']" in text
    assert "[CTCUG all] count: expected 150 image/GT pairs, found 149" in text
    assert f"[CTCUG] size_mismatch: image {tmp_path}/CTCUG/CTCUG_images/9.jpg is 8x8 but GT" in text
    assert "9.png is 8x5 (WxH)" in text
    assert f"[CTCUG] unreadable: {tmp_path}/CTCUG/CTCUG_images/11.jpg: OSError" in text
    with pytest.raises(DatasetLayoutError) as err:
        ds.check()
    assert "data layout check: 5 problem(s)" in str(err.value)


def test_datamodule_raises_by_default_and_warns_when_not_strict(tmp_path):
    good = DUT(make_dut(tmp_path / "DUT", n_train=0, n_test=500), "test")
    bad = CTCUG(broken_ctcug(tmp_path / "CTCUG"))
    missing = DUT(tmp_path / "nowhere", "train")
    kw = {"test": {"dut_te": good, "ctcug": bad}, "train": {"dut_tr": missing},
          "eval_transform": build_eval_transform((8, 8)), "train_transform": build_eval_transform((8, 8))}
    with pytest.raises(DatasetLayoutError) as err:
        BenchmarkDataModule(**kw)
    report = str(err.value)
    assert report.startswith("data layout check: 7 problem(s)")  # 5 CTCUG + 2 missing folders
    assert "test/dut_te: DUT test at" in report and "-> OK" in report
    assert f"image folder not found; looked for {tmp_path}/nowhere/DUT600S_Training" in report
    assert "data.strict=false" in report
    with pytest.warns(UserWarning, match=r"data layout check: 7 problem\(s\)"):
        dm = BenchmarkDataModule(strict=False, **kw)
    assert len(dm.test_dataloader()[0].dataset) == 500
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BenchmarkDataModule(test={"dut_te": good}, eval_transform=build_eval_transform((8, 8)))


def test_full_level_decodes_and_checks_masks(tmp_path):
    root = make_ctcug(tmp_path / "CTCUG")
    data = (root / "CTCUG_images" / "3.jpg").read_bytes()
    big = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(big)
    raw = big.read_bytes()
    write_pair(root / "CTCUG_images" / "3.jpg", root / "CTCUG_gt" / "3.png", False, size=(64, 64))
    (root / "CTCUG_images" / "3.jpg").write_bytes(raw[: len(raw) // 2])  # truncated: header fine, pixels not
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (8, 8), dtype=np.uint8)).save(root / "CTCUG_gt" / "4.png")
    assert data and CTCUG(root).layout_issues("headers") == []
    kinds = {i.kind: str(i) for i in CTCUG(root).layout_issues("full")}
    assert set(kinds) == {"unreadable", "not_a_mask"}
    assert "3.jpg: OSError" in kinds["unreadable"] and "4.png has" in kinds["not_a_mask"]
    with pytest.raises(ValueError, match="unknown layout check level 'deep'"):
        CTCUG(root).layout_issues("deep")


def test_check_cli_prints_the_report(tmp_path, capsys):
    make_ctcug(tmp_path / "CTCUG")
    assert check_cli.main(["data=ctcug", f"data.root={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert f"data=ctcug root={tmp_path} check=full" in out and "data layout check: OK" in out
    (tmp_path / "CTCUG" / "CTCUG_gt" / "1.png").unlink()
    assert check_cli.main(["data=ctcug", f"data.root={tmp_path}", "data.check=headers"]) == 1
    out = capsys.readouterr().out
    assert "data layout check: 2 problem(s)" in out and "['1.jpg']" in out
    assert check_cli.main(["data.root=x"]) == 2


def test_prepare_imports_symlinks_idempotently_and_never_touches_the_source(tmp_path, capsys):
    download = tmp_path / "download" / "DUT_release"
    for i in range(1, 4):
        write_pair(download / "DUT600S_Training" / f"{i}.jpg", download / "DUT600GT_Training" / f"{i}.png", True)
        write_pair(download / "DUT500S-Testing" / f"{i}.jpg", download / "DUT500GT-Testing" / f"{i}.png", True)
    before = sorted((p.relative_to(download), p.stat().st_mtime_ns) for p in download.rglob("*"))
    root = tmp_path / "data"
    assert prepare_cli.main(["dut", str(tmp_path / "download"), "--root", str(root)]) == 1  # 3 != 600 / 500
    out = capsys.readouterr().out
    assert "DUT600S_Training: 3 new, 0 already there" in out and "expected 600 image/GT pairs, found 3" in out
    assert (root / "DUT" / "test" / "image" / "1.jpg").is_symlink()
    assert len(DUT(root / "DUT", "test", expected_count=3)) == 3
    code, report = prepare_cli.prepare("dut", download, root)  # again: nothing new
    assert "test/gt: 0 new, 3 already there" in report
    code, report = prepare_cli.prepare("dut", download, root, mode="copy")  # same content: still nothing new
    assert "test/gt: 0 new, 3 already there" in report
    assert sorted((p.relative_to(download), p.stat().st_mtime_ns) for p in download.rglob("*")) == before
    (root / "DUT" / "test" / "gt" / "2.png").unlink()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(root / "DUT" / "test" / "gt" / "2.png")
    with pytest.raises(prepare_cli.PrepareError, match="2.png exists and differs from"):
        prepare_cli.prepare("dut", download, root)
    with pytest.raises(prepare_cli.PrepareError, match="no ctcug folder found under"):
        prepare_cli.prepare("ctcug", download, root)
    assert prepare_cli.main(["ebd", str(tmp_path / "missing"), "--root", str(root)]) == 2
    assert "source folder not found" in capsys.readouterr().err


def test_prepare_copy_mode_gives_the_published_count(tmp_path):
    src = make_ctcug(tmp_path / "dl" / "CTCUG_release")
    code, report = prepare_cli.prepare("ctcug", tmp_path / "dl", tmp_path / "data", mode="copy")
    assert code == 0 and "data layout check: OK" in report
    copied = tmp_path / "data" / "CTCUG" / "CTCUG_gt" / "1.png"
    assert copied.is_file() and not copied.is_symlink() and (src / "CTCUG_gt" / "1.png").is_file()
