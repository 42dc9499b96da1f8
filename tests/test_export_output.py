"""export never overwrites a file it did not write (a user's model.onnx, a foreign export.json), replaces
its own, and on a full disk stops with one line (exit 2), keeps the finished graph and stays resumable."""

from __future__ import annotations

import hashlib
import json

import pytest

from dbd_lightning.export import export
from dbd_lightning.utils.errors import handle_user_errors

from .disk_full import FullDisk, partial_files
from .helpers import compose_cfg
from .run_fixtures import make_run

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs"), seed=4)


def _export(tmp_path, capsys, run_dir, out, *extra):
    cfg = compose_cfg(tmp_path / "h", [f"ckpt={run_dir}", f"output_dir={out}", "check=false", *extra],
                      config_name="export")
    try:
        with handle_user_errors(log_file=False):
            export(cfg)
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def _tree(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("user_file", ["model.onnx", "model.torchscript.pt", "export.json"])
def test_a_users_file_is_refused_before_anything_is_written(tmp_path, capsys, run_dir, user_file):
    out = tmp_path / "exported"
    out.mkdir()
    (out / user_file).write_bytes(b"the user's own file")
    (out / "notes.txt").write_text("mine")
    before = _tree(out)
    code, text = _export(tmp_path, capsys, run_dir, out)
    assert code == 2, text
    assert str(out / user_file) in text and "did not write" in text, text
    assert "output_dir=" in text and "Traceback" not in text, text
    assert _tree(out) == before  # nothing written, nothing overwritten


def test_an_output_dir_that_cannot_be_made_is_refused_before_the_model_loads(tmp_path, capsys, run_dir,
                                                                             monkeypatch):
    (tmp_path / "a_file").write_text("not a folder")
    import dbd_lightning.export as export_module

    monkeypatch.setattr(export_module, "resolve_checkpoint", lambda *a: pytest.fail("the model was loaded"))
    code, text = _export(tmp_path, capsys, run_dir, tmp_path / "a_file" / "out")
    assert code == 2 and "Traceback" not in text, text
    assert f"output_dir={tmp_path / 'a_file' / 'out'} cannot be written" in text, text
    assert "a path component is a file" in text, text
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_export_replaces_its_own_files_and_keeps_a_users_other_files(tmp_path, capsys, run_dir):
    out = tmp_path / "exported"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _export(tmp_path, capsys, run_dir, out, "formats=[onnx]")[0] == 0
    code, text = _export(tmp_path, capsys, run_dir, out)  # model.onnx is export's own now: replaced
    assert code == 0, text
    assert sorted(_tree(out)) == ["export.json", "model.onnx", "model.torchscript.pt", "notes.txt"]
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["written_by"] == "dbd_lightning.export" and "status" not in manifest
    assert manifest["written_files"] == ["model.onnx", "model.torchscript.pt"]
    assert set(manifest["files"]) == {"onnx", "torchscript"}
    assert (out / "notes.txt").read_text() == "mine"


def test_disk_full_stops_with_one_line_and_the_rerun_completes(tmp_path, capsys, monkeypatch, run_dir):
    out = tmp_path / "exported"
    FullDisk(monkeypatch, out, free=1000, when=lambda p: "torchscript" in p.name)
    code, text = _export(tmp_path, capsys, run_dir, out)
    assert code == 2, text
    assert (f"error: disk full while writing {out / 'model.torchscript.pt'}: free space and rerun the same "
            "command; finished files are kept") in text and "Traceback" not in text, text
    assert sorted(_tree(out)) == ["export.json", "model.onnx"] and partial_files(out) == []
    monkeypatch.undo()
    code, text = _export(tmp_path, capsys, run_dir, out)
    assert code == 0, text
    assert sorted(_tree(out)) == ["export.json", "model.onnx", "model.torchscript.pt"] and partial_files(out) == []
