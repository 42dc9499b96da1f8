"""synth replaces or deletes only what it wrote: a user's dataset is refused even with overwrite=true, a
user's extra file in synth's folder is kept, and a full disk stops with one line and resumes."""

from __future__ import annotations

import hashlib
import json

from dbd_lightning.synth import main

from .disk_full import FullDisk, partial_files

SUBDIRS = ("image", "gt", "depth", "radius", "edge", "edge_type")
SUFFIX = {"radius": ".npy"}


def _synth(out, *extra, seed=2, n=2):
    return main([f"out={out}", f"n={n}", f"seed={seed}", "preset=shallow", "size=24x32", "progress=false", *extra])


def _tree(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _synth_files(seed, n):
    names = [f"synth_{seed}_{i:06d}" for i in range(n)]
    return sorted([f"{s}/{name}{SUFFIX.get(s, '.png')}" for s in SUBDIRS for name in names]
                  + ["info.jsonl", "meta.json"])


def _users_dataset(root):
    for sub in ("image", "gt"):
        (root / sub).mkdir(parents=True)
        (root / sub / "holiday.png").write_bytes(f"the user's {sub}".encode())
    return _tree(root)


def test_overwrite_refuses_a_dataset_synth_did_not_write(tmp_path, capsys):
    out = tmp_path / "mine"
    before = _users_dataset(out)
    for extra in ((), ("overwrite=true",)):
        assert _synth(out, *extra) == 2
        err = capsys.readouterr().err
        assert f"error: {out} is not empty and was not written by dbd_lightning.synth" in err, err
        assert "choose a new or empty out=" in err and "its synthetic dataset" not in err, err
        assert _tree(out) == before  # nothing deleted, nothing written
    assert sorted(p.name for p in out.iterdir()) == ["gt", "image"]


def test_overwrite_replaces_only_the_files_synth_wrote(tmp_path, capsys):
    out = tmp_path / "ds"
    assert _synth(out, seed=2, n=3) == 0
    assert sorted(_tree(out)) == _synth_files(2, 3)
    (out / "image" / "holiday.png").write_bytes(b"the user's photo")
    (out / "notes.txt").write_text("mine")
    user = {k: v for k, v in _tree(out).items() if k in ("image/holiday.png", "notes.txt")}
    assert _synth(out, seed=2, n=3) == 2
    assert "pass overwrite=true" in capsys.readouterr().err
    assert _synth(out, "overwrite=true", seed=5, n=1) == 0
    after = _tree(out)
    assert sorted(after) == sorted([*_synth_files(5, 1), *user])  # the old samples gone, the user's files kept
    assert {k: after[k] for k in user} == user
    meta = json.loads((out / "meta.json").read_text())
    assert meta["names"] == ["synth_5_000000"] and meta["complete"] is True


def test_a_users_file_at_a_name_synth_would_write_is_refused(tmp_path, capsys):
    out = tmp_path / "ds"
    assert _synth(out, seed=2, n=1) == 0
    (out / "gt" / "synth_7_000000.png").write_bytes(b"not synth's")
    before = _tree(out)
    assert _synth(out, "overwrite=true", seed=7, n=1) == 2
    assert str(out / "gt" / "synth_7_000000.png") in capsys.readouterr().err
    assert _tree(out) == before


def test_disk_full_stops_with_one_line_and_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ds"
    FullDisk(monkeypatch, out, free=50, when=lambda p: p.parent.name == "depth" and "000001" in p.name)
    assert _synth(out, n=3) == 2
    err = capsys.readouterr().err
    assert err == (f"error: disk full while writing {out / 'depth' / 'synth_2_000001.png'}: free space and rerun "
                   "the same command; finished files are kept\n")
    assert partial_files(out) == []
    done = sorted(_tree(out))
    assert "image/synth_2_000001.png" in done and "depth/synth_2_000001.png" not in done
    assert json.loads((out / "meta.json").read_text())["complete"] is False
    monkeypatch.undo()
    assert _synth(out, seed=3, n=1) == 2  # another request does not take over the unfinished folder
    assert "overwrite=true" in capsys.readouterr().err
    assert _synth(out, n=3) == 0  # the same command: resumed, no overwrite=true needed
    assert sorted(_tree(out)) == _synth_files(2, 3) and partial_files(out) == []
    assert json.loads((out / "meta.json").read_text())["complete"] is True
    assert len((out / "info.jsonl").read_text().splitlines()) == 3
