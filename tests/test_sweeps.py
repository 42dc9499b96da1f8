"""Hydra launcher / sweeper configs (plugins are optional extras: `sweep`, `slurm`; tests skip without them)
and the sweep folder naming (``sweep_name``)."""

from __future__ import annotations

import importlib.util

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class

from dbd_lightning.utils.config import config_dir

from .helpers import TINY, run_module


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _compose(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


@pytest.mark.skipif(not _has("hydra_plugins.hydra_joblib_launcher"), reason="pip install -e '.[sweep]'")
def test_joblib_launcher_config():
    cfg = _compose(["hydra/launcher=joblib"])
    assert get_class(cfg.hydra.launcher._target_).__name__ == "JoblibLauncher"
    assert cfg.hydra.launcher.n_jobs == 2 and cfg.hydra.launcher.prefer == "processes"


@pytest.mark.skipif(not _has("hydra_plugins.hydra_submitit_launcher"), reason="pip install -e '.[slurm]'")
def test_submitit_slurm_launcher_config():
    cfg = _compose(["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu"])
    assert get_class(cfg.hydra.launcher._target_).__name__ == "SlurmLauncher"
    launcher = cfg.hydra.launcher
    assert launcher.partition == "gpu" and launcher.max_num_timeout == 0 and launcher.signal_delay_s == 120
    assert launcher.name == cfg.task_name


@pytest.mark.skipif(not _has("hydra_plugins.hydra_optuna_sweeper"), reason="pip install -e '.[sweep]'")
def test_optuna_search_spaces():
    cfg = _compose(["hparams_search=ddffnet_optuna", "experiment=ddffnet_stage2", *TINY])
    sweeper = cfg.hydra.sweeper
    assert get_class(sweeper._target_).__name__ == "OptunaSweeper"
    assert dict(sweeper.params) == {"loss.edge_weight": "interval(0.05, 2.0)",
                                    "callbacks.distillation.beta_max": "interval(0.3, 10.0)"}
    assert str(sweeper.direction) in ("minimize", "Direction.minimize") and cfg.hydra.mode.name == "MULTIRUN"
    # the searched keys exist in the composed config (a typo would only fail at the first trial)
    assert cfg.loss.edge_weight == 0.5 and cfg.callbacks.distillation.beta_max == 3.0
    assert cfg.optimized_metric == "val/synthetic/mae" and cfg.sweep_name == "ddffnet_optuna"
    assert cfg.hydra.sweep.dir.endswith("/ddffnet_stage2/multiruns/ddffnet_optuna")  # named by the sweep
    edge = _compose(["hparams_search=edge_weight_optuna", *TINY])
    assert list(edge.hydra.sweeper.params) == ["loss.edge_weight"]


@pytest.mark.slow
@pytest.mark.skipif(not (_has("hydra_plugins.hydra_optuna_sweeper") and _has("hydra_plugins.hydra_joblib_launcher")),
                    reason="pip install -e '.[sweep]'")
def test_optuna_sweep_runs_trials_in_parallel_with_joblib(tmp_path):
    proc = run_module("dbd_lightning.train", ["hparams_search=edge_weight_optuna", "hydra/launcher=joblib",
                                              "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
                                              "model=dffnet_small", "trainer.max_epochs=1", "logger=csv",
                                              "task_name=hp", "sweep_name=my_search", *TINY], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "outputs" / "hp" / "multiruns" / "my_search"
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(result["best_params"]) == {"loss.edge_weight"} and result["best_value"] > 0
    trials = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert trials == ["trial_0", "trial_1"]
    values = [next(o for o in yaml.safe_load((sweep / t / ".hydra" / "overrides.yaml").read_text())
                   if o.startswith("loss.edge_weight=")) for t in trials]
    assert values[0] != values[1]
    assert all((sweep / t / "metrics.json").is_file() for t in trials)
