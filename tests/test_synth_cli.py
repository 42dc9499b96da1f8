"""`python -m dbd_lightning.synth` and the dataset writer."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dbd_lightning.data.synthetic import SyntheticRenderer, resolve_config
from dbd_lightning.synth import main, parse_args

SUBDIRS = ("image", "gt", "depth", "radius", "edge", "edge_type")


def _write(out, *extra):
    return main([f"out={out}", "n=3", "seed=2", "preset=shallow", "size=40x48", "progress=false", *extra])


def test_cli_writes_benchmark_layout(tmp_path):
    out = tmp_path / "ds"
    assert _write(out) == 0
    names = [f"synth_2_{i:06d}" for i in range(3)]
    for sub in SUBDIRS:
        files = sorted(p.stem for p in (out / sub).iterdir())
        assert files == names, sub
    meta = json.loads((out / "meta.json").read_text())
    assert meta["polarity"] == "white_in_focus"
    assert meta["n"] == 3 and meta["seed"] == 2 and meta["names"] == names
    assert meta["config"]["size"] == [40, 48] and meta["preset"] == "shallow"
    assert len((out / "info.jsonl").read_text().splitlines()) == 3

    ref = SyntheticRenderer(resolve_config("shallow", size=(40, 48)), seed=2).render(1)
    name = names[1]
    img = cv2.imread(str(out / "image" / f"{name}.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(img, ref["image"])
    gt = cv2.imread(str(out / "gt" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    assert gt.dtype == np.uint8 and set(np.unique(gt)) <= {0, 255}
    np.testing.assert_array_equal(gt == 255, ref["mask"] == 1)  # white = in focus
    depth = cv2.imread(str(out / "depth" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16
    np.testing.assert_allclose(depth / 65535.0, ref["depth"], atol=1e-4)
    radius = np.load(out / "radius" / f"{name}.npy")
    assert radius.dtype == np.float32
    np.testing.assert_array_equal(radius, ref["radius"])
    edge = cv2.imread(str(out / "edge" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(edge == 255, ref["dof_edge"] == 1)
    et = cv2.imread(str(out / "edge_type" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(et, ref["edge_type"])


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "ds"
    assert _write(out) == 0
    before = (out / "meta.json").read_text()
    assert main([f"out={out}", "n=1", "seed=9", "size=32", "progress=false"]) != 0
    assert "overwrite=true" in capsys.readouterr().err
    assert (out / "meta.json").read_text() == before
    (out / "keep.txt").write_text("user file")
    assert main([f"out={out}", "n=1", "seed=9", "size=32", "progress=false", "overwrite=true"]) == 0
    assert sorted(p.name for p in (out / "image").iterdir()) == ["synth_9_000000.png"]
    assert (out / "keep.txt").read_text() == "user file"  # only the writer's own files are replaced


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main([f"out={tmp_path / 'a'}", "preset=deep", "progress=false"]) == 2
    assert "random, shallow, wide" in capsys.readouterr().err
    assert main([f"out={tmp_path / 'b'}", "colour=blue"]) == 2
    assert main(["n=3"]) == 2  # out is required
    assert not (tmp_path / "a").exists()


def test_parse_args_overrides():
    args = parse_args(["out=x", "n=5", "size=64", "f_number=[1.4,2.0]", "jpeg_quality=null", "psf=gaussian"])
    assert args["n"] == 5 and args["size"] == 64
    assert args["overrides"] == {"f_number": [1.4, 2.0], "jpeg_quality": None, "psf": "gaussian"}
    with pytest.raises(ValueError):
        parse_args(["out=x", "size=abc"])


def test_module_entry_point(tmp_path):
    out = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, "-m", "dbd_lightning.synth", f"out={out}", "n=1", "size=32", "progress=false"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "image" / "synth_0_000000.png").is_file()
