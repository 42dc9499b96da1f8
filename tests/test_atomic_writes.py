"""Atomic writes (dbd_lightning.utils.atomic): a full disk leaves the old file or nothing, never a
truncated file or a temporary one, and stops with one line (exit 2). Checkpoints included."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from dbd_lightning.utils.atomic import DiskFullError, write_atomic, write_json
from dbd_lightning.utils.checkpoint_io import AtomicCheckpointIO
from dbd_lightning.utils.errors import handle_user_errors

from .disk_full import FullDisk, partial_files

MESSAGE = "disk full while writing {}: free space and rerun the same command; finished files are kept"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_full_disk_keeps_the_old_file_and_raises_the_one_line_error(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    write_json(path, {"old": True})
    before = _sha(path)
    disk = FullDisk(monkeypatch, tmp_path, free=5)
    with pytest.raises(DiskFullError) as info:
        write_json(path, {"new": "x" * 100})
    assert str(info.value) == MESSAGE.format(path)
    assert disk.hits and disk.hits[0].name.startswith(".a.json.partial-")  # the disk filled on the temp file
    assert _sha(path) == before and partial_files(tmp_path) == []


def test_other_errors_pass_unchanged_and_clean_up(tmp_path):
    def broken(f):
        f.write(b"half")
        raise ValueError("encoder failed")

    with pytest.raises(ValueError, match="encoder failed"):
        write_atomic(tmp_path / "x.png", broken)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_while_saving_a_checkpoint_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    """The zip writer's RuntimeError is recognised as a full disk; the previous checkpoint stays intact."""
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.arange(10.0)}, "epoch": 1}, path)
    before = _sha(path)
    FullDisk(monkeypatch, tmp_path, free=1000)
    with pytest.raises(SystemExit) as info, handle_user_errors(log_file=False):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(100_000)}, "epoch": 2}, path)
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err == f"error: {MESSAGE.format(path)}\n"
    monkeypatch.undo()
    assert _sha(path) == before and partial_files(tmp_path) == []
    assert torch.load(path, weights_only=True)["epoch"] == 1
