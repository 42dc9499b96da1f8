"""Bad input to the data check and to predict: exit status 2 (or a warning), a message naming the culprit,
and nothing outside the run's own output changed (checksums of the whole sandbox before / after).

Data cases go through ``python -m dbd_lightning.data.check data=folder`` (in process); predict cases through
``predict`` inside :func:`handle_user_errors`, exactly what its ``main`` does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dbd_lightning.data import check as check_cli
from dbd_lightning.data.folder import DatasetLayoutError, ImageMaskFolder
from dbd_lightning.data.transforms import build_eval_transform
from dbd_lightning.predict import overlay, predict
from dbd_lightning.predict_output import MARKER
from dbd_lightning.utils.errors import UserError, handle_user_errors

from .helpers import compose_cfg
from .run_fixtures import CUHK_SAMPLE


# ------------------------------------------------------------------ helpers
def digest(root: Path, skip: Path | None = None) -> dict[str, str]:
    """sha256 of every file (and link target name) under ``root``, except under ``skip``."""
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        if p.is_symlink():
            out[p.relative_to(root).as_posix()] = "link:" + os.readlink(p)
        elif p.is_file():
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif p.is_dir():
            out[p.relative_to(root).as_posix() + "/"] = "dir"
    return out


def smooth_rgb(h=32, w=40, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], -1)
    return np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


def make_folder(root: Path, n: int = 3, size=(32, 40)) -> Path:
    """``root/image/{i}.png`` + ``root/gt/{i}.png`` (binary GT, left half in focus)."""
    for i in range(n):
        (root / "image").mkdir(parents=True, exist_ok=True)
        (root / "gt").mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_rgb(*size, seed=i)).save(root / "image" / f"{i}.png")
        gt = np.zeros(size, np.uint8)
        gt[:, : size[1] // 2] = 255
        Image.fromarray(gt).save(root / "gt" / f"{i}.png")
    return root


def jpeg_bytes(size=(32, 40)) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(smooth_rgb(*size, seed=7)).save(buf, format="JPEG")
    return buf.getvalue()


def run_check(capsys, root: Path, *extra: str) -> tuple[int, str]:
    code = check_cli.main(["data=folder", f"data.root={root}", "data.check=headers", *extra])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


class Brightness:
    """A ``model=<name>``-style predictor (no checkpoint needed): focus = brightness; optional extra map."""

    def __init__(self, extra: bool = False):
        self.extra = extra

    def predict_image(self, rgb):
        g = rgb.mean(axis=2).astype(np.float32) / 255.0
        return {"focus": g, "blur_radius": 1.0 - g} if self.extra else {"focus": g}


def run_predict(tmp_path: Path, capsys, inp: Path, out: Path, *extra: str, predictor=None) -> tuple[int, str]:
    cfg = compose_cfg(tmp_path / "_hydra", [f"input={inp}", f"output={out}", *extra], config_name="predict")
    try:
        with handle_user_errors():
            predict(cfg, predictor or Brightness(), "brightness")
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out + cap.err


# ------------------------------------------------------------------ data: errors (exit 2, before any model)
def _corrupt_jpeg(root):
    (root / "image" / "1.png").unlink()
    (root / "image" / "1.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200))
    return "1.jpg"


def _truncated_jpeg(root):
    (root / "image" / "1.png").unlink()
    data = jpeg_bytes()
    (root / "image" / "1.jpg").write_bytes(data[: len(data) - 30])  # header intact, end of the scan missing
    return "1.jpg: TruncatedFileError: the file is truncated (it ends without its JPEG EOI marker"


def _truncated_png(root):
    data = (root / "image" / "2.png").read_bytes()
    (root / "image" / "2.png").write_bytes(data[: len(data) - 40])
    return "2.png: TruncatedFileError: the file is truncated (it ends without its PNG IEND chunk"


def _size_mismatch(root):
    Image.fromarray(np.zeros((20, 40), np.uint8)).save(root / "gt" / "0.png")
    return "is 40x32 but GT"


def _duplicate_stem(root):
    (root / "image" / "0.jpg").write_bytes(jpeg_bytes())
    return "0.jpg and 0.png in"


def _empty_file(root):
    (root / "gt" / "2.png").write_bytes(b"")
    return "gt/2.png: UnidentifiedImageError"


def _unpaired(root):
    (root / "gt" / "1.png").unlink()
    return "1 image(s) without GT"


def _not_an_image(root):
    (root / "image" / "0.png").write_text("hello, I am text")
    return "image/0.png: UnidentifiedImageError"


DATA_ERRORS = {
    "corrupt_jpeg": _corrupt_jpeg,
    "truncated_jpeg": _truncated_jpeg,
    "truncated_png": _truncated_png,
    "size_mismatch": _size_mismatch,
    "duplicate_stem": _duplicate_stem,
    "empty_file": _empty_file,
    "unpaired": _unpaired,
    "text_as_png": _not_an_image,
}


@pytest.mark.parametrize("case", list(DATA_ERRORS))
def test_data_check_exits_2_naming_the_file(tmp_path, capsys, case):
    root = make_folder(tmp_path / "set")
    culprit = DATA_ERRORS[case](root)
    before = digest(tmp_path)
    code, text = run_check(capsys, root)
    assert code == 2, text
    assert culprit in text, text
    assert "Traceback" not in text
    assert digest(tmp_path) == before  # a check writes nothing


@pytest.mark.parametrize("case", ["truncated_jpeg", "size_mismatch", "duplicate_stem"])
def test_the_datamodule_refuses_before_any_model_is_built(tmp_path, capsys, case):
    """The same errors stop DBDDataModule's constructor (train builds it before the model) as a UserError."""
    from dbd_lightning.data.datamodule import DBDDataModule

    root = make_folder(tmp_path / "set")
    culprit = DATA_ERRORS[case](root)
    with pytest.raises(DatasetLayoutError) as err:
        ds = ImageMaskFolder(root)
        DBDDataModule(train={"folder": ds}, train_transform=build_eval_transform((32, 32)))
    assert isinstance(err.value, UserError) and culprit in str(err.value)
    with pytest.raises(SystemExit) as stop, handle_user_errors():
        raise err.value
    assert stop.value.code == 2 and culprit in capsys.readouterr().err


@pytest.mark.parametrize("override, key", [("data.check=deep", "data.check"), ("data.polarity=black", "data.polarity")])
def test_bad_data_config_values_name_the_key(tmp_path, capsys, override, key):
    code, text = run_check(capsys, make_folder(tmp_path / "set"), override)
    assert code == 2 and key in text and "Traceback" not in text


def test_missing_data_root_names_the_folder(tmp_path, capsys):
    code, text = run_check(capsys, tmp_path / "nowhere")
    assert code == 2 and f"{tmp_path}/nowhere/image" in text and "data.root" in text


# ------------------------------------------------------------------ data: warnings (exit 0, said clearly)
def test_grey_gt_is_a_warning_with_its_grey_fraction(tmp_path, capsys):
    root = make_folder(tmp_path / "set")
    ramp = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (32, 1))  # a gradient, not a mask
    Image.fromarray(ramp).save(root / "gt" / "1.png")
    grey = ((ramp > 15) & (ramp < 240)).mean()
    code, text = run_check(capsys, root)
    assert code == 0 and "grey_gt" in text and f"1.png ({grey:.0%} grey)" in text


def _real_folder(root: Path) -> Path:
    shutil.copytree(CUHK_SAMPLE, root)  # GT white = in focus
    return root


def test_inverted_polarity_is_a_warning_naming_the_fix(tmp_path, capsys):
    root = _real_folder(tmp_path / "real")
    code, text = run_check(capsys, root, "data.polarity=white_blurred")
    assert code == 0 and "polarity looks inverted" in text and "set data.polarity=white_in_focus" in text
    assert "in 5 of the 5 judgeable images (of 5 checked" in text and "sign-test p = 0.0312" in text
    code, text = run_check(capsys, root)  # the right polarity: no such warning
    assert code == 0 and "polarity looks inverted" not in text and "] polarity:" not in text


def test_folder_without_its_own_val_test_split_says_so(tmp_path, capsys):
    from dbd_lightning.data.datamodule import DBDDataModule

    root = make_folder(tmp_path / "set")
    code, text = run_check(capsys, root)
    assert code == 0 and "[val/folder] shared_split: 3 of 3 images are also training images" in text
    assert "data.val_root=DIR data.test_root=DIR" in text
    held = make_folder(tmp_path / "held", n=2)
    code, text = run_check(capsys, root, f"data.val_root={held}", f"data.test_root={held}")
    assert code == 0 and "shared_split" not in text
    tf = build_eval_transform((32, 32))
    ds = ImageMaskFolder(root)
    dm = DBDDataModule(train={"folder": ds}, val={"folder": ImageMaskFolder(root)}, train_transform=tf,
                       eval_transform=tf)
    with pytest.warns(UserWarning, match="validation scores measure fit"):
        dm.setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm.setup("test")  # eval / test only: nothing to say


# ------------------------------------------------------------------ predict
def _photos(root: Path) -> Path:
    for i, name in enumerate(("a.png", "b.png")):
        root.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_rgb(seed=i)).save(root / name)
    return root


def _user_file_in_focus(tmp_path):
    src = _photos(tmp_path / "photos")
    (src / "focus").mkdir()
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(src / "focus" / "a.png")
    return src, src, [], str(src / "focus" / "a.png")


def _user_file_in_overlay(tmp_path):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    (out / "overlay").mkdir(parents=True)
    (out / "overlay" / "b.png").write_bytes(b"my own drawing")
    return src, out, [], str(out / "overlay" / "b.png")


def _output_is_a_file(tmp_path):
    src = _photos(tmp_path / "photos")
    (tmp_path / "notes.txt").write_text("keep me")
    return src, tmp_path / "notes.txt", [], f"output={tmp_path / 'notes.txt'} is an existing file"


def _foreign_report(tmp_path):
    src = _photos(tmp_path / "photos")
    (src / "report.json").write_text('{"predictor": "my own notes", "written": []}')
    return src, src, [], f"{src / 'report.json'} exists but was not written by dbd_lightning.predict"


def _symlink_at_target(tmp_path):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    (out / "focus").mkdir(parents=True)
    (tmp_path / "precious.png").write_bytes(b"precious")
    (out / "focus" / "a.png").symlink_to(tmp_path / "precious.png")
    return src, out, [], str(out / "focus" / "a.png")


def _npy_target(tmp_path):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    (out / "focus").mkdir(parents=True)
    np.save(out / "focus" / "b.npy", np.zeros(3))
    return src, out, ["save_npy=true"], str(out / "focus" / "b.npy")


def _input_into_itself(tmp_path):
    d = tmp_path / "d"
    (d / "focus").mkdir(parents=True)
    Image.fromarray(smooth_rgb()).save(d / "focus" / "a.png")
    return d / "focus" / "a.png", d, [], "would overwrite the input"


def _all_inputs_corrupt(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    (src / "x.png").write_bytes(b"\x89PNG broken")
    return src, tmp_path / "out", [], "no image could be predicted"


PREDICT_REFUSALS = {
    "user_file_in_focus_of_input_folder": _user_file_in_focus,
    "user_file_in_overlay": _user_file_in_overlay,
    "output_is_an_existing_file": _output_is_a_file,
    "foreign_report_json": _foreign_report,
    "symlink_at_a_target": _symlink_at_target,
    "user_npy_at_a_target": _npy_target,
    "input_inside_its_own_output": _input_into_itself,
}


@pytest.mark.parametrize("case", list(PREDICT_REFUSALS))
def test_predict_refuses_before_writing_anything(tmp_path, capsys, case):
    inp, out, extra, culprit = PREDICT_REFUSALS[case](tmp_path)
    before = digest(tmp_path, skip=tmp_path / "_hydra")
    code, text = run_predict(tmp_path, capsys, inp, out, *extra)
    assert code == 2, text
    assert culprit in text and "Traceback" not in text, text
    assert digest(tmp_path, skip=tmp_path / "_hydra") == before  # nothing written, nothing overwritten


def test_all_inputs_corrupt_exits_2_and_writes_only_its_own_report(tmp_path, capsys):
    inp, out, extra, culprit = _all_inputs_corrupt(tmp_path)
    before = digest(tmp_path, skip=tmp_path / "_hydra")
    code, text = run_predict(tmp_path, capsys, inp, out, *extra)
    assert code == 2 and culprit in text and str(inp / "x.png") in text
    after = digest(tmp_path, skip=tmp_path / "_hydra")
    assert {k: after.get(k) for k in before} == before
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                  if p.is_file() and "_hydra" not in p.parts) == ["out/report.json", "photos/x.png"]


def test_extra_map_colliding_with_a_user_file_is_not_overwritten(tmp_path, capsys):
    """Extra maps are known only after predicting: the image is skipped (listed), the user's file kept."""
    src = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    (out / "blur_radius").mkdir(parents=True)
    (out / "blur_radius" / "a.png").write_bytes(b"mine")
    code, text = run_predict(tmp_path, capsys, src, out, predictor=Brightness(extra=True))
    assert code == 0 and "1 skipped" in text and str(out / "blur_radius" / "a.png") in text
    assert (out / "blur_radius" / "a.png").read_bytes() == b"mine"
    assert not (out / "focus" / "a.png").exists() and (out / "focus" / "b.png").is_file()


def test_read_only_output_folder_is_refused(tmp_path, capsys, monkeypatch):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits: simulate the refusal of the probe file instead
        import dbd_lightning.utils.preflight as preflight  # predict's write probe is the preflight's

        def refuse(*a, **k):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(preflight.tempfile, "mkstemp", refuse)
    else:
        out.chmod(0o555)
    try:
        code, text = run_predict(tmp_path, capsys, src, out)
    finally:
        out.chmod(0o755)
    assert code == 2 and f"cannot write to the output folder {out}" in text and "Permission denied" in text
    assert list(out.iterdir()) == []


def test_predict_into_the_input_folder_writes_only_new_files_and_recognises_its_own(tmp_path, capsys):
    src = _photos(tmp_path / "photos")
    (src / "overlay").mkdir()
    (src / "overlay" / "unrelated.png").write_bytes(b"user")  # a user file predict would never write
    user = digest(src)
    code, text = run_predict(tmp_path, capsys, src, src, "recursive=true")
    assert code == 0, text
    after = digest(src)
    assert {k: v for k, v in after.items() if k in user} == user  # every user file unchanged
    import json

    report = json.loads((src / "report.json").read_text())
    assert report["written_by"] == MARKER
    assert report["files"] == ["focus/a.png", "focus/b.png", "overlay/a.png", "overlay/b.png"]
    rgb = np.asarray(Image.open(src / "a.png").convert("RGB"))
    focus = rgb.mean(axis=2).astype(np.float32) / 255.0
    np.testing.assert_array_equal(np.asarray(Image.open(src / "overlay" / "a.png")), overlay(rgb, focus))
    code, text = run_predict(tmp_path, capsys, src, src, "recursive=true")  # its own files: replaced, not inputs
    assert code == 0 and "2 image(s) written" in text
    assert json.loads((src / "report.json").read_text())["files"] == report["files"]
    assert digest(src)["overlay/unrelated.png"] == user["overlay/unrelated.png"]
