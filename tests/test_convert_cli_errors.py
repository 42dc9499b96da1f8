"""``python -m dbd_lightning.convert``'s error path (issue 26): bad input is ``error: <one paragraph naming
the file and the fix>``, exit 2, no traceback (``HYDRA_FULL_ERROR=1``: the exception); the converted file
is written atomically and never over a file the converters did not write."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch

from dbd_lightning.convert import main
from dbd_lightning.models.conversion.errors import ConvertError


class Evil:
    def __reduce__(self):
        return (print, ("executed!",))


AUTHORS = {"deconv1.prev.weight": torch.ones(4, 8, 3, 3), "fusiond.bias": torch.zeros(1)}


def _error(args, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    assert exc.value.code == 2, captured
    assert "Traceback" not in captured.err and "executed!" not in captured.out
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    return captured.err


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    (tmp_path / "random.pth").write_bytes(os.urandom(4096))
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save({"state_dict": {"w": torch.ones(1)}, "x": Evil()}, tmp_path / "evil.pth")
    torch.save({"state_dict": {"net.stages.0.conv_in.weight": torch.ones(1)}, "dbd_run": {"model": {}},
                "pytorch-lightning_version": "2.6.6"}, tmp_path / "ours.ckpt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in AUTHORS.items()}}, tmp_path / "res_best.pth")
    return tmp_path


@pytest.mark.parametrize("src,names", [
    ("missing.pth", ["SRC=", "missing.pth", "does not exist", "authors' released weight file"]),
    ("random.pth", ["random.pth", "not a PyTorch checkpoint", "authors' released weight file"]),
    ("empty.pth", ["empty.pth", "empty (0 bytes)"]),
    ("evil.pth", ["evil.pth", "refused", "could run code"]),
    ("ours.ckpt", ["ours.ckpt", "checkpoint of this suite", "needs no conversion", "ckpt="]),
])
def test_bad_source_is_one_paragraph_exit_2(src, names, files, capsys):
    err = _error(["dd", str(files / src), str(files / "out.ckpt"), "--no-check"], capsys)
    for name in names:
        assert name in err, (name, err)
    assert "weights_only=False" not in err
    assert not (files / "out.ckpt").exists()


def test_full_error_shows_the_exception(files, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConvertError, match="random.pth"):
        main(["ddffnet", str(files / "random.pth"), str(files / "out.ckpt")])


def test_never_overwrites_a_file_it_did_not_write(files, capsys):
    user = files / "mine.ckpt"
    user.write_bytes(b"my own checkpoint")
    before = hashlib.sha256(user.read_bytes()).hexdigest()
    err = _error(["dd", str(files / "res_best.pth"), str(user), "--no-check"], capsys)
    assert "mine.ckpt" in err and "did not write" in err
    assert hashlib.sha256(user.read_bytes()).hexdigest() == before
    # its own output is replaced (a rerun), atomically: no temporary file left
    out = files / "dd.ckpt"
    assert main(["dd", str(files / "res_best.pth"), str(out), "--no-check"]) == 0
    assert main(["dd", str(files / "res_best.pth"), str(out), "--no-check"]) == 0
    saved = torch.load(out, weights_only=True)
    assert saved["written_by"] == "dbd_lightning.convert"
    assert torch.equal(saved["state_dict"]["net.stages.0.conv_in.weight"], AUTHORS["deconv1.prev.weight"])
    assert sorted(p.name for p in files.iterdir() if p.name.startswith(".")) == []
    # a converted file given back as a source is named as ours
    assert "checkpoint of this suite" in _error(["dd", str(out), str(files / "again.ckpt")], capsys)


def test_karaali_bad_mat_folder_names_the_file(tmp_path, capsys):
    (tmp_path / "blur").mkdir()
    err = _error(["karaali", "--blur", str(tmp_path / "blur"), "--out", str(tmp_path / "o")], capsys)
    assert f"{tmp_path}/blur/0.mat" in err and "authors' released weight file" in err
    (tmp_path / "blur" / "0.mat").write_bytes(np.arange(64, dtype=np.uint8).tobytes())
    err = _error(["karaali", "--blur", str(tmp_path / "blur"), "--out", str(tmp_path / "o")], capsys)
    assert "0.mat" in err and "not a readable MATLAB" in err
    assert not (tmp_path / "o").exists()
