"""The paper registry (models/registry.py): read from the paper folders, cheap to import, and enough to add a
paper: a throwaway folder + its configs reach the converter, bench, metrics and the model group."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import dbd_lightning.models
from dbd_lightning.bench import runner as bench
from dbd_lightning.convert import main as convert_main
from dbd_lightning.metrics.collection import resolve_convention
from dbd_lightning.models import registry
from dbd_lightning.utils.config import config_dir
from dbd_lightning.utils.validate import _job_overrides


def test_reading_every_declaration_imports_neither_torch_nor_lightning():
    code = ("import sys, json; from dbd_lightning.models import registry; p = registry.papers(); "
            "print(json.dumps([sorted(p), sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'lightning', 'timm', 'torchvision'))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    names, heavy = json.loads(out.stdout)
    assert names == ["btbnet", "ddffnet", "ddnet", "dffnet", "karaali", "pdnet", "rdffnet"]
    assert heavy == []


def test_the_shipped_papers_declarations():
    assert registry.presets() == {"ddffnet": "ddffnet_paper", "d-dffnet": "ddffnet_paper", "dd": "ddnet_paper",
                                  "ddnet": "ddnet_paper", "rdffnet": "rdffnet", "btbnet": "btbnet_paper",
                                  "karaali_bnet": "karaali_bnet", "karaali_enet": "karaali_enet"}
    assert sorted(registry.converters()) == ["dd", "ddffnet", "dffnet", "karaali", "pdnet"]
    assert registry.papers()["karaali"].predicts == "blur_radius" and registry.papers()["dffnet"].predicts == \
        "focus_probability"
    assert registry.paper_of("dbd_lightning.models.karaali.pipeline.KaraaliPipeline").name == "karaali"
    assert registry.paper_of("dbd_lightning.tasks.detection.DetectionTask") is None
    assert registry.data_serves("dbd_lightning.models.karaali.patches.KaraaliPatchDataModule") == "edge_patches"
    assert registry.data_serves("dbd_lightning.data.synthetic.SyntheticDataModule") == "images"
    assert set(registry.pipelines()) == {"karaali", "karaali_authors_code"}


def test_a_name_declared_twice_is_refused(monkeypatch):
    from dbd_lightning.models.paper import Paper

    two = {"a": Paper(name="a", converters={"x": "m1"}), "b": Paper(name="b", converters={"x": "m2"})}
    monkeypatch.setattr(registry, "papers", lambda: two)
    with pytest.raises(registry.RegistryError, match="'x' is declared by models/a and models/b"):
        registry.converters()


TOY_INIT = '''
from dbd_lightning.models.paper import Paper

PAPER = Paper(
    name="toy",
    title="a throwaway paper",
    presets={"toy": "toy_paper"},
    converters={"toy": "dbd_lightning.models.toy.convert"},
    bench={"toy_case": ("dbd_lightning.models.toy.bench:bench_toy", {"n": 3}, {"n": 1})},
    metric_conventions={"toy": dict(positive="focus", threshold=0.25, beta2=1.0, adaptive_factor=2.0,
                                    adaptive_cap=1.0, strict=False, adaptive_target=False, empty_score=0.0,
                                    mae_averaging="per_image", fbeta_averaging="pooled", iou_averaging="pooled")},
)
'''
TOY_CONVERT = '''
def main(argv, kind):
    print(f"toy converter {kind} {argv}")
    return 0
'''
TOY_BENCH = '''
def bench_toy(n):
    return {"n": n}
'''
TOY_MODEL = '''# @package _global_
defaults:
  - dffnet_small@model
  - /experiment/toy_paper
  - _self_
'''
TOY_EXPERIMENT = '''# @package _global_
defaults:
  - override /model: dffnet_small
  - override /loss: bce
  - override /metrics: ddnet
  - _self_
task_name: toy_paper
model:
  net:
    channels: 8
'''


@pytest.fixture
def toy_paper(tmp_path, monkeypatch):
    """A paper folder ``models/toy`` (outside the package, on its path) and a config tree with its two files."""
    folder = tmp_path / "models" / "toy"
    folder.mkdir(parents=True)
    for name, text in {"__init__.py": TOY_INIT, "convert.py": TOY_CONVERT, "bench.py": TOY_BENCH}.items():
        (folder / name).write_text(textwrap.dedent(text))
    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    (conf / "model" / "toy.yaml").write_text(TOY_MODEL)
    (conf / "experiment" / "toy_paper.yaml").write_text(TOY_EXPERIMENT)
    monkeypatch.setattr(dbd_lightning.models, "__path__", [*dbd_lightning.models.__path__, str(tmp_path / "models")])
    registry.clear()
    yield conf
    registry.clear()
    for name in [m for m in sys.modules if m.startswith("dbd_lightning.models.toy")]:
        del sys.modules[name]


def test_a_new_paper_is_its_folder_and_its_configs(toy_paper, capsys):
    assert registry.presets()["toy"] == "toy_paper" and "toy" in registry.papers()
    # the converter CLI
    assert convert_main(["toy", "weights.pth"]) == 0
    assert "toy converter toy ['weights.pth']" in capsys.readouterr().out
    # bench
    assert "toy_case" in bench.cases() and bench.run_case("toy_case", quick=True) == {"n": 1}
    # the metric convention, by name, with overrides
    assert resolve_convention("toy", threshold=0.5)["beta2"] == 1.0
    # the model group: model=toy is its recipe, and sweeps with other options
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(toy_paper), version_base="1.3"):
        cfg = compose("train", overrides=["model=toy", "data=synthetic"], return_hydra_config=True)
        assert cfg.task_name == "toy_paper" and cfg.model.net.channels == 8 and cfg.metrics.preset == "dd"
        assert cfg.hydra.runtime.choices.loss == "bce" and cfg.hydra.runtime.choices.model == "toy"
        jobs, multirun = _job_overrides(["-m", "model=toy,dffnet_small"])
        assert multirun and [compose("train", overrides=j).task_name for j in jobs] == ["toy_paper", "train"]
