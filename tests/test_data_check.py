"""The layout check (one report of everything wrong), its CLI, and the prepare (import) command."""

import hashlib
import os
import re
import shutil
import tarfile
import warnings
import zipfile
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from dbd_lightning.data import archive as archive_mod
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
    # headers: the missing JPEG EOI marker finds the truncation (confirmed by decoding that one file);
    # the grey GT is not in the headers level's sample of 12 of 150 pairs
    (issue,) = CTCUG(root).layout_issues("headers")
    assert data and issue.kind == "unreadable" and "3.jpg: TruncatedFileError: the file is truncated" in str(issue)
    kinds = {i.kind: str(i) for i in CTCUG(root).layout_issues("full")}
    assert set(kinds) == {"unreadable", "grey_gt"}
    assert "3.jpg: OSError" in kinds["unreadable"] and "4.png (" in kinds["grey_gt"] and "grey)" in kinds["grey_gt"]
    with pytest.raises(ValueError, match="unknown layout check level 'deep'"):
        CTCUG(root).layout_issues("deep")


def test_check_cli_prints_the_report(tmp_path, capsys):
    make_ctcug(tmp_path / "CTCUG")
    assert check_cli.main(["data=ctcug", f"data.root={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert f"data=ctcug root={tmp_path} check=full" in out and "data layout check: OK" in out
    (tmp_path / "CTCUG" / "CTCUG_gt" / "1.png").unlink()
    assert check_cli.main(["data=ctcug", f"data.root={tmp_path}", "data.check=headers"]) == 2
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
    assert "source folder or archive not found" in capsys.readouterr().err


def test_prepare_copy_mode_gives_the_published_count(tmp_path):
    src = make_ctcug(tmp_path / "dl" / "CTCUG_release")
    code, report = prepare_cli.prepare("ctcug", tmp_path / "dl", tmp_path / "data", mode="copy")
    assert code == 0 and "data layout check: OK" in report
    copied = tmp_path / "data" / "CTCUG" / "CTCUG_gt" / "1.png"
    assert copied.is_file() and not copied.is_symlink() and (src / "CTCUG_gt" / "1.png").is_file()


# --- prepare from an archive ------------------------------------------------------------------------------

_TAR_MODES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz"}


def _pack(src, archive, prefix=""):
    """Pack the files under ``src`` into ``archive`` (format from its name), each named ``prefix + relpath``."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                zf.write(f, prefix + f.relative_to(src).as_posix())
    else:
        with tarfile.open(archive, _TAR_MODES[archive_mod.archive_suffix(archive)]) as tar:
            for f in files:
                tar.add(f, prefix + f.relative_to(src).as_posix())
    return archive


def _tree(root):
    """The canonical tree: relative path -> content (links followed)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name, prefix", [("DUT.zip", ""), ("DUT.zip", "DUT/"), ("DUT.tar.gz", "DUT-master/"),
                                          ("DUT.tgz", ""), ("DUT.tar", "DUT/"), ("DUT.tar.bz2", "DUT/"),
                                          ("DUT.tar.xz", "dut-master/DUT/")])
def test_prepare_imports_an_archive_like_the_folder_idempotently(tmp_path, capsys, name, prefix):
    tree = make_dut(tmp_path / "dl" / "DUT", n_train=3, n_test=2)
    code_folder, _ = prepare_cli.prepare("dut", tree, tmp_path / "from_folder", mode="copy")
    archive = _pack(tree, tmp_path / "downloads" / name, prefix)
    digest, mtime = _sha(archive), archive.stat().st_mtime_ns
    root = tmp_path / "data"
    code, report = prepare_cli.prepare("dut", archive, root)
    staging = root / ".downloads" / "DUT"
    assert code == code_folder == 1  # 3 != 600, 2 != 500
    assert f"import dut from {archive} (extracted to {staging})" in report and "DUT600S_Training: 3 new" in report
    assert _tree(root / "DUT") == _tree(tmp_path / "from_folder" / "DUT")  # same canonical tree as the folder
    link = root / "DUT" / "test" / "gt" / "1.bmp"
    assert link.is_symlink() and staging.resolve() in link.resolve().parents
    marker = staging / archive_mod.MARKER
    stamp = (marker.stat().st_mtime_ns, link.resolve().stat().st_ino, link.resolve().stat().st_mtime_ns)
    # second run (through the CLI): the extraction is reused, nothing extracted or imported again
    assert prepare_cli.main(["dut", str(archive), "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"(reusing its extraction in {staging})" in out and "test/gt: 0 new, 2 already there" in out
    assert (marker.stat().st_mtime_ns, link.resolve().stat().st_ino, link.resolve().stat().st_mtime_ns) == stamp
    assert os.listdir(root / ".downloads") == ["DUT"]  # no partial folder left
    assert _sha(archive) == digest and archive.stat().st_mtime_ns == mtime  # the archive is untouched


@pytest.mark.parametrize("name", ["CTCUG.zip", "CTCUG.tar.gz", "CTCUG.tar.xz"])
def test_prepare_refuses_a_truncated_archive_and_leaves_nothing_trusted(tmp_path, capsys, name):
    tree = make_ctcug(tmp_path / "dl" / "CTCUG", n=4)
    full = _pack(tree, tmp_path / "full" / name, "CTCUG/")
    cut = tmp_path / "downloads" / name
    cut.parent.mkdir()
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    digest, root = _sha(cut), tmp_path / "data"
    with pytest.raises(prepare_cli.PrepareError, match=re.escape(str(cut))) as exc:
        prepare_cli.prepare("ctcug", cut, root)
    assert "corrupt or truncated" in str(exc.value)
    assert not (root / ".downloads").exists() or os.listdir(root / ".downloads") == []
    assert not (root / "CTCUG").exists() and _sha(cut) == digest
    assert prepare_cli.main(["ctcug", str(cut), "--root", str(root)]) == 2
    assert f"error: cannot extract {cut}" in capsys.readouterr().err
    shutil.copyfile(full, cut)  # the complete download: extracted afresh, nothing stale trusted
    code, report = prepare_cli.prepare("ctcug", cut, root)
    assert "(extracted to" in report and "CTCUG_gt: 4 new" in report


def test_prepare_refuses_a_tar_cut_at_a_member_boundary(tmp_path):
    full = _pack(make_ctcug(tmp_path / "dl" / "CTCUG", n=3), tmp_path / "full" / "CTCUG.tar")
    with tarfile.open(full) as tar:
        cut_at = tar.getmembers()[-1].offset
    cut = tmp_path / "CTCUG.tar"
    cut.write_bytes(full.read_bytes()[:cut_at])
    with tarfile.open(cut) as tar:
        assert len(tar.getmembers()) == 5  # tarfile alone takes it for a complete archive of 5 files
    with pytest.raises(prepare_cli.PrepareError, match=re.escape(f"{cut} is truncated or corrupt: no end-of-archive")):
        prepare_cli.prepare("ctcug", cut, tmp_path / "data")
    assert os.listdir(tmp_path / "data" / ".downloads") == []


def _tar_member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    info.size = 3 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize("fmt, member, why", [
    ("zip", "../evil.png", "'..' in its path"),
    ("tar", "../evil.png", "'..' in its path"),
    ("tar", "CTCUG/../../evil.png", "'..' in its path"),
    ("zip", "..\\evil.png", "'..' in its path"),
    ("zip", "/tmp/evil.png", "absolute path"),
    ("tar", "/tmp/evil.png", "absolute path"),
    ("tar-symlink", "CTCUG/CTCUG_gt/9.png", "LinkOutsideDestinationError"),
    ("tar-abs-symlink", "CTCUG/CTCUG_gt/9.png", "AbsoluteLinkError"),
    ("tar-hardlink", "CTCUG/CTCUG_gt/9.png", "LinkOutsideDestinationError"),
    ("tar-fifo", "CTCUG/fifo", "SpecialFileError"),
])
def test_prepare_refuses_unsafe_archive_members(tmp_path, fmt, member, why):
    tree = make_ctcug(tmp_path / "dl" / "CTCUG", n=2)
    archive = _pack(tree, tmp_path / "downloads" / ("CTCUG.zip" if fmt == "zip" else "CTCUG.tar"), "CTCUG/")
    if fmt == "zip":
        with zipfile.ZipFile(archive, "a") as zf:
            zf.writestr(member, b"bad")
    else:
        info = {"tar": lambda: _tar_member(member),
                "tar-symlink": lambda: _tar_member(member, tarfile.SYMTYPE, "../../../outside.png"),
                "tar-abs-symlink": lambda: _tar_member(member, tarfile.SYMTYPE, "/etc/passwd"),
                "tar-hardlink": lambda: _tar_member(member, tarfile.LNKTYPE, "../outside.png"),
                "tar-fifo": lambda: _tar_member(member, tarfile.FIFOTYPE)}[fmt]()
        with tarfile.open(archive, "a") as tar:
            tar.addfile(info, BytesIO(b"bad") if info.isreg() else None)
    digest, root = _sha(archive), tmp_path / "data"
    with pytest.raises(prepare_cli.PrepareError) as exc:
        prepare_cli.prepare("ctcug", archive, root)
    msg = str(exc.value)
    assert str(archive) in msg and repr(member) in msg and why in msg and "nothing was extracted" in msg
    assert os.listdir(root / ".downloads") == [] and not (root / "CTCUG").exists()
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "data" / "evil.png").exists()
    assert _sha(archive) == digest


def test_prepare_archive_staging_conflicts_and_redownloads(tmp_path):
    tree = make_ctcug(tmp_path / "dl" / "CTCUG", n=2)
    archive = _pack(tree, tmp_path / "downloads" / "CTCUG.zip", "CTCUG/")
    root = tmp_path / "data"
    prepare_cli.prepare("ctcug", archive, root)
    os.utime(archive, ns=(1, 1))  # downloaded again: same bytes, new mtime -> reused (checked by SHA-256)
    (root / ".downloads" / ".CTCUG.partial-x1").mkdir()  # as an interrupted (killed) extraction leaves it
    code, report = prepare_cli.prepare("ctcug", archive, root)
    assert "reusing its extraction" in report and "CTCUG_gt: 0 new, 2 already there" in report
    assert ".CTCUG.partial-x1 is left from an interrupted extraction; safe to delete" in report
    other = _pack(make_ctcug(tmp_path / "dl2" / "CTCUG", n=3), tmp_path / "elsewhere" / "CTCUG.tar.gz")
    with pytest.raises(prepare_cli.PrepareError, match="holds the extraction of a different archive"):
        prepare_cli.prepare("ctcug", other, root)  # same stem, other content: refused, not overwritten
    (root / ".downloads" / "EBD").mkdir()  # a folder prepare did not complete: never trusted
    with pytest.raises(prepare_cli.PrepareError, match="is not a complete extraction by prepare"):
        prepare_cli.prepare("ebd", _pack(tree, tmp_path / "EBD.zip"), root)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(prepare_cli.PrepareError, match="is a file but not a supported archive"):
        prepare_cli.prepare("ctcug", tmp_path / "notes.txt", root)
    with pytest.raises(prepare_cli.PrepareError, match=r"no ebd folder found under .*\.downloads/CTCUG_only"):
        prepare_cli.prepare("ebd", _pack(tree, tmp_path / "CTCUG_only.tar.xz"), root)
