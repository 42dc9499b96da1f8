"""``data.check`` on ``data=folder`` reports every problem in one pass (issue 26: it reported in stages).

A folder with four kinds of problem at once (an image without GT, two images with one stem, a
truncated image, a GT of another size) plus a validation folder that does not exist: one run of the
check lists all of them and exits 2; a missing ``data.root`` names the key to set.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from dbd_lightning.data import check as check_cli

from .benchmark_trees import write_pair


def _broken_folder(root):
    for i in range(6):
        write_pair(root / "image" / f"{i}.png", root / "gt" / f"{i}.png", True, size=(16, 16))
    write_pair(root / "image" / "lonely.png", root / "unused" / "lonely.png", True)  # image without GT
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(root / "image" / "1.jpg")  # second file, stem '1'
    raw = (root / "image" / "2.png").read_bytes()
    (root / "image" / "2.png").write_bytes(raw[: len(raw) // 2])  # truncated
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(root / "gt" / "3.png")  # 16x8 GT for a 16x16 image
    return root


def test_one_pass_reports_every_problem(tmp_path, capsys):
    root = _broken_folder(tmp_path / "set")
    code = check_cli.main(["data=folder", f"data.root={root}", f"data.val_root={tmp_path}/no_val"])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text
    assert "Traceback" not in text
    for expected in ("unpaired: 1 image(s) without GT", 'lonely', "duplicate: 1.jpg and 1.png",
                     f"unreadable: {root}/image/2.png", f"size_mismatch: image {root}/image/3.png is 16x16",
                     f"{tmp_path}/no_val/image"):
        assert expected in text, (expected, text)
    assert "data layout check: 5 problem(s)" in text


def test_missing_root_names_the_key(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = check_cli.main(["data=folder"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: data.root (needed by data=folder) is not set") and "data.root=<" in err
    assert "datamodule" not in err and "Traceback" not in err
