"""experiments/seed_summary.py: arms from Hydra sweeps (two-stage jobs give two arms), mean and sample std."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from .helpers import REPO

_spec = importlib.util.spec_from_file_location("seed_summary", REPO / "experiments" / "seed_summary.py")
seed_summary = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_summary)


def _job(folder: Path, seed: int, metrics: dict) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n")
    (folder / ".hydra" / "config.yaml").write_text(f"task_name: x\nseed: {seed}\n")
    (folder / "metrics.json").write_text(json.dumps(metrics))
    # a stage folder of the two-stage pipeline: has a config and metrics but is not a Hydra job
    (folder / "stage2" / ".hydra").mkdir(parents=True)
    (folder / "stage2" / ".hydra" / "config.yaml").write_text(f"seed: {seed}\n")
    (folder / "stage2" / "metrics.json").write_text(json.dumps({"test/s/mae": 99.0}))


def test_two_arms_from_one_two_stage_sweep(tmp_path):
    for i, (s1, s2) in enumerate([(0.30, 0.20), (0.40, 0.25), (0.50, 0.45)]):
        _job(tmp_path / "sweep" / f"seed={i}", seed=i, metrics={"stage1/test/s/mae": s1, "test/s/mae": s2})
    text = seed_summary.main([f"DFFNet={tmp_path / 'sweep'}:stage1/", f"D-DFFNet={tmp_path / 'sweep'}",
                              "--keys", "test/s/mae"])
    assert "| DFFNet | 0 | 0.3000 |" in text and "| D-DFFNet | 2 | 0.4500 |" in text
    assert "| DFFNet | 3 | 0.4000 ± 0.1000 |" in text          # mean 0.4, sample std 0.1
    assert "| D-DFFNet | 3 | 0.3000 ± 0.1323 |" in text        # sqrt(((-.1)^2 + (-.05)^2 + .15^2) / 2)
    assert "99" not in text                                      # stage folders are not jobs


def test_missing_metric_and_empty_sweep_are_reported(tmp_path):
    _job(tmp_path / "a" / "0", seed=0, metrics={"test/s/mae": 0.1})
    with pytest.raises(KeyError, match="stage1/test/s/mae"):
        seed_summary.main([f"X={tmp_path / 'a'}:stage1/", "--keys", "test/s/mae"])
    with pytest.raises(FileNotFoundError, match="no Hydra job"):
        seed_summary.main([f"X={tmp_path / 'nothing'}", "--keys", "test/s/mae"])
