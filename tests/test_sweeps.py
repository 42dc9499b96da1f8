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
    # SLURM must send the signal Lightning requeues on (USR1), not submitit's own USR2
    assert dict(launcher.additional_parameters) == {"signal": "USR1@120", "requeue": True}
    later = _compose(["hydra/launcher=submitit_slurm", "hydra.launcher.signal_delay_s=300"])
    assert later.hydra.launcher.additional_parameters.signal == "USR1@300"


class _Job:
    def results(self):
        return [None]


def _sbatch_script(tmp_path, monkeypatch, overrides) -> str:
    """The sbatch script the launcher would submit (the launcher's own code path, sbatch not called)."""
    import submitit
    from hydra.utils import instantiate
    from submitit.slurm.slurm import SlurmExecutor

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # "srun is there"
    scripts = []

    def map_array(self, fn, *iterables):
        scripts.append(self._executor._make_submission_file_text("python -u -m submitit.core._submit x", "uid"))
        return [_Job() for _ in iterables[0]]

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    cfg = _compose(["hydra/launcher=submitit_slurm", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides])
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=lambda c: None, config=cfg)
    launcher.launch([["loss.edge_weight=0.1"], ["loss.edge_weight=0.5"]], initial_job_idx=0)
    assert len(scripts) == 1
    return scripts[0]


@pytest.mark.skipif(not _has("hydra_plugins.hydra_submitit_launcher"), reason="pip install -e '.[slurm]'")
def test_submitit_sbatch_script_asks_slurm_for_lightnings_requeue_signal(tmp_path, monkeypatch):
    import signal

    from lightning.fabric.plugins.environments import SLURMEnvironment
    from submitit.slurm.slurm import SlurmJobEnvironment

    script = _sbatch_script(tmp_path, monkeypatch, ["hydra.launcher.partition=gpu"])
    lines = script.splitlines()
    assert "#SBATCH --signal=USR1@120" in lines and "#SBATCH --requeue" in lines
    assert not any("USR2" in line for line in lines)  # submitit's default line is replaced, not doubled
    assert "#SBATCH --time=1440" in lines and "#SBATCH --partition=gpu" in lines
    # USR1 is what Lightning's SLURMEnvironment requeues on; submitit's handler sits on another signal
    sent = signal.Signals["SIG" + next(x for x in lines if x.startswith("#SBATCH --signal=")).split("=")[1].split("@")[0]]
    assert sent == SLURMEnvironment().requeue_signal == signal.SIGUSR1
    assert signal.Signals["SIG" + SlurmJobEnvironment.USR_SIG] == signal.SIGUSR2
    assert "--signal=USR1@300" in _sbatch_script(tmp_path, monkeypatch, ["hydra.launcher.signal_delay_s=300"])


@pytest.mark.skipif(not _has("hydra_plugins.hydra_submitit_launcher"), reason="pip install -e '.[slurm]'")
def test_lightning_binds_its_requeue_handler_next_to_submitits(tmp_path, monkeypatch):
    """In a submitit job, submitit binds USR2 / TERM / CONT first (core/submission.py), then the trainer
    (auto-detected SLURMEnvironment, the project's trainer config) binds its requeue handler on USR1;
    it would not bind on USR2 (a handler is already there), which is why SLURM is asked for USR1."""
    import signal

    from hydra.utils import instantiate
    from lightning.fabric.plugins.environments import SLURMEnvironment
    from submitit.slurm.slurm import SlurmJobEnvironment

    from .helpers import compose_cfg

    for key, value in {"SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
                       "SLURM_NODEID": "0", "SLURM_JOB_ID": "123", "SLURM_JOB_NAME": "train",
                       "SLURM_NODELIST": "node1"}.items():
        monkeypatch.setenv(key, value)
    sigs = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGCONT)
    saved = {s: signal.getsignal(s) for s in sigs}
    try:
        for s in sigs:
            signal.signal(s, signal.SIG_DFL)
        SlurmJobEnvironment()._handle_signals(None, None)  # submitit's own binding, as in a job
        submitit_usr2 = signal.getsignal(signal.SIGUSR2)
        assert submitit_usr2.__name__ == "checkpoint_and_try_requeue"
        cfg = compose_cfg(tmp_path, ["trainer.devices=1"])
        trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        env = trainer._accelerator_connector.cluster_environment
        assert isinstance(env, SLURMEnvironment) and env.auto_requeue and env.requeue_signal == signal.SIGUSR1
        trainer._signal_connector.register_signal_handlers()
        usr1 = signal.getsignal(signal.SIGUSR1)
        assert trainer._signal_connector._slurm_sigusr_handler_fn in getattr(usr1, "signal_handlers", [])
        assert signal.getsignal(signal.SIGUSR2) is submitit_usr2  # untouched: submitit never requeues on USR1
        trainer._signal_connector.teardown()
        # the alternative wiring (Lightning on USR2) is silently skipped because submitit holds USR2
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        usr2_trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False,
                                   plugins=[SLURMEnvironment(requeue_signal=signal.SIGUSR2)])
        usr2_trainer._signal_connector.register_signal_handlers()
        assert signal.getsignal(signal.SIGUSR2) is submitit_usr2
        usr2_trainer._signal_connector.teardown()
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


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
