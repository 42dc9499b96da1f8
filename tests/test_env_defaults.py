"""The entry points set the offline environment defaults (dbd_lightning/_env.py) before any library reads them."""

import ast
import os
import subprocess
import sys

import pytest

from .helpers import REPO

SRC = REPO / "src" / "dbd_lightning"
ENTRY_POINTS = ["train.py", "eval.py", "predict.py", "export.py", "synth.py", "bench/__init__.py", "bench/runner.py",
                "convert/__init__.py", "zoo/__main__.py", "data/check.py", "data/prepare.py",
                "models/karaali/evaluate.py", "bench/metrics.py", "app/__main__.py"]


@pytest.mark.parametrize("path", ENTRY_POINTS)
def test_entry_point_imports_the_env_defaults_before_anything_else(path):
    imports = [n for n in ast.parse((SRC / path).read_text()).body if isinstance(n, ast.Import | ast.ImportFrom)]
    first = next(n for n in imports if not (isinstance(n, ast.ImportFrom) and n.module == "__future__"))
    assert isinstance(first, ast.ImportFrom) and first.module is None and [a.name for a in first.names] == ["_env"]


def test_defaults_reach_huggingface_hub_and_an_exported_value_wins():
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "NO_ALBUMENTATIONS_UPDATE")}
    env.update(WANDB_MODE="online", PYTHONPATH=str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", ""))
    probe = ("import os, dbd_lightning.synth, huggingface_hub.constants as c; "
             "print(os.environ['WANDB_MODE'], os.environ['NO_ALBUMENTATIONS_UPDATE'], c.HF_HUB_OFFLINE)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, check=True)
    # huggingface_hub reads HF_HUB_OFFLINE once, at its import: the default was set before it
    assert out.stdout.split() == ["online", "1", "True"]
