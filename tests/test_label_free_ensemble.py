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


@pytest.mark.parametrize("spec", ["bad name=a,b", "x=only_one", "x=missing_a,missing_b"])
def test_a_bad_ensemble_spec_stops_with_its_text(tmp_path, monkeypatch, spec):
    if spec == "x=only_one":
        (tmp_path / "only_one").write_bytes(b"")
        spec = f"x={tmp_path / 'only_one'}"
    monkeypatch.setattr(sys, "argv", ["ensemble.py", "--work", str(tmp_path), "--out", str(tmp_path / "o.json"),
                                      "--ensemble", spec])
    with pytest.raises(SystemExit, match="expected NAME=FILE,FILE"):
        ensemble.main()
    assert not (tmp_path / "o.json").exists()
