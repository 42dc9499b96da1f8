"""experiments/label_free/soup.py: the uniform soup is the plain mean of the files' floating-point tensors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "label_free"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from soup import average  # noqa: E402


def _file(path: Path, scale: list[float], count: int, record: str) -> Path:
    save_file({"bn.weight": torch.tensor(scale, dtype=torch.float16),
               "bn.num_batches_tracked": torch.tensor(count)}, str(path), metadata={"dbd_lightning": record})
    return path


def test_the_soup_is_the_mean_and_keeps_the_first_record_and_counters(tmp_path):
    a = _file(tmp_path / "a.safetensors", [1.0, 0.5], 3, "first")
    b = _file(tmp_path / "b.safetensors", [2.0, 0.25], 7, "second")
    c = _file(tmp_path / "c.safetensors", [0.0, 0.75], 9, "third")
    average([a, b, c], tmp_path / "soup" / "m.safetensors")
    soup = load_file(str(tmp_path / "soup" / "m.safetensors"))
    assert soup["bn.weight"].dtype == torch.float16
    assert soup["bn.weight"].tolist() == [1.0, 0.5]  # (1 + 2 + 0) / 3, (0.5 + 0.25 + 0.75) / 3
    assert soup["bn.num_batches_tracked"].item() == 3
    with safe_open(str(tmp_path / "soup" / "m.safetensors"), "pt") as handle:
        assert handle.metadata() == {"dbd_lightning": "first"}


def test_files_of_different_networks_are_refused(tmp_path):
    a = _file(tmp_path / "a.safetensors", [1.0], 1, "x")
    other = tmp_path / "o.safetensors"
    save_file({"conv.weight": torch.zeros(1)}, str(other))
    with pytest.raises(SystemExit, match="does not hold the tensors"):
        average([a, other], tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
