"""experiments/label_free/soup.py and tent.py: the uniform soup is the plain mean of the files' floating-point tensors;
the scripts refuse what would file scores under the wrong model."""

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


def test_a_file_given_twice_or_missing_is_refused(tmp_path):
    a = _file(tmp_path / "a.safetensors", [1.0], 1, "x")
    with pytest.raises(SystemExit, match="given twice"):
        average([a, tmp_path / "." / "a.safetensors"], tmp_path / "m.safetensors")
    with pytest.raises(SystemExit, match="cannot read"):
        average([a, tmp_path / "missing.safetensors"], tmp_path / "m.safetensors")


def test_tent_script_refuses_a_short_setting_and_a_file_from_another_checkpoint(tmp_path):
    import json

    from tent import reused_from, run_setting

    with pytest.raises(SystemExit, match="expected LR:PASSES:SEED"):
        run_setting("3e-3:1", "zoo:x", tmp_path, tmp_path, "t")
    made = tmp_path / "made.safetensors"
    save_file({"w": torch.zeros(1)}, str(made), metadata={"dbd_lightning": json.dumps({"adapted_from": "zoo:a"})})
    reused_from(made, "zoo:a")  # the same source: reused
    with pytest.raises(SystemExit, match="adapted from zoo:a, not --ckpt zoo:b"):
        reused_from(made, "zoo:b")
    # a run folder: the file names the checkpoint the folder resolved to; once the run has a better one, refused
    from dbd_lightning.runs.resolver import resolve_checkpoint

    from .run_fixtures import make_run

    def adapted(source: str, checkpoint: str) -> Path:
        save_file({"w": torch.zeros(1)}, str(made), metadata={"dbd_lightning": json.dumps(
            {"adapted_from": source, "source_checkpoint": checkpoint})})
        return made

    run = make_run(tmp_path / "runs", seed=0)
    best = resolve_checkpoint(str(run)).ckpt.name
    reused_from(adapted(str(run), best), str(run))
    with pytest.raises(SystemExit, match=f"'s epoch_099.ckpt, and --ckpt {run} now resolves to {best}"):
        reused_from(adapted(str(run), "epoch_099.ckpt"), str(run))
    # a released model: its file is the checkpoint (the name adapt records), so its adapted files are reused
    reused_from(adapted("zoo:dffnet_lite0_synth", "dffnet_lite0_synth.safetensors"), "zoo:dffnet_lite0_synth")


def test_scores_of_an_earlier_file_are_not_reused_for_a_rebuilt_one(tmp_path):
    from tent import evaluate

    folder = tmp_path / "eval" / "m"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text("{}")
    with pytest.raises(SystemExit, match="was just rebuilt"):
        evaluate(tmp_path / "m.safetensors", folder, fresh=True)
