"""experiments/label_free/ensemble.py: an ensemble's map is the per-photo mean of its members' saved maps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "label_free"))
import ensemble  # noqa: E402


def test_the_ensemble_map_is_the_mean_of_the_members_maps(tmp_path):
    members = []
    for m, values in enumerate([[0.0, 1.0, 0.25], [1.0, 0.5, 0.75]]):
        root = tmp_path / "maps" / f"m{m}"
        for split in ("a", "b"):
            (root / split / "focus").mkdir(parents=True)
            for i, v in enumerate(values):
                np.save(root / split / "focus" / f"p{i}.npy", np.full((2, 3), v, np.float32))
        members.append(root)
    out = ensemble.mean_maps("both", members, tmp_path, ["a", "b"])
    assert out == tmp_path / "maps" / "both"
    for split in ("a", "b"):
        got = [float(np.load(out / split / "focus" / f"p{i}.npy")[1, 2]) for i in range(3)]
        assert got == [0.5, 0.75, 0.5]  # (0 + 1) / 2, (1 + 0.5) / 2, (0.25 + 0.75) / 2
        assert np.load(out / split / "focus" / "p0.npy").dtype == np.float32


@pytest.mark.parametrize("spec, message", [
    ("bad name=A,B", "expected NAME=FILE,FILE"), ("x=A", "expected NAME=FILE,FILE"),
    ("x=A,missing", "expected NAME=FILE,FILE"), ("x=A,sub/A", "A names two different files"),
    ("A=A,B", "A names two different files, or a file and an ensemble")])
def test_a_bad_ensemble_spec_stops_before_any_work(tmp_path, monkeypatch, spec, message):
    for name in ("A.safetensors", "B.safetensors", "sub/A.safetensors"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    name, files = spec.split("=")
    spec = name + "=" + ",".join(str(tmp_path / f"{f}.safetensors") for f in files.split(","))
    monkeypatch.setattr(sys, "argv", ["ensemble.py", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "o.json"),
                                      "--ensemble", spec])
    with pytest.raises(SystemExit, match=message):
        ensemble.main()
    assert not (tmp_path / "o.json").exists() and not (tmp_path / "work").exists()


def test_maps_of_a_rebuilt_member_are_not_reused(tmp_path):
    member = tmp_path / "m-1.safetensors"
    member.write_bytes(b"one")
    folder = tmp_path / "work" / "maps" / "m_1"
    folder.mkdir(parents=True)
    (folder / "source.txt").write_text(f"{member.resolve()} 3 1\n")  # the same file as it was at another time
    with pytest.raises(SystemExit, match="holds the maps of .*m-1.safetensors as it was then"):
        ensemble.predict(member, {}, tmp_path / "work")
    (folder / "source.txt").unlink()  # a first run stamps the folder, and a second accepts it
    assert ensemble.predict(member, {}, tmp_path / "work") == folder
    assert ensemble.predict(member, {}, tmp_path / "work") == folder
