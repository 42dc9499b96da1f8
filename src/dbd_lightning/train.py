"""Train (and test) a model: ``python -m dbd_lightning.train model=dffnet data=synthetic``.

Everything comes from the Hydra config tree (``conf/train.yaml``); multirun
sweeps work as usual (``-m loss=bce,bce_edge``). One training is :mod:`dbd_lightning.runner`;
a config with a ``pipeline`` node runs its stages (:mod:`dbd_lightning.pipelines.stages`). Each
run's output folder holds the resolved config, checkpoints (best + last), logger files and metrics.json.

``model=<paper>`` is the paper's model with its recipe, an option of the model group
(``conf/model/ddffnet.yaml`` runs both D-DFFNet stages; each paper folder declares its presets). Continue a killed run in its own folder with
``run_dir=<run folder> ckpt_path=last`` (:mod:`dbd_lightning.runs.resume`). The composed
config is checked before Hydra creates the run folder (:mod:`dbd_lightning.train_checks`:
values, data on disk, checkpoint, memory); user errors print ``error: ...`` and exit 2. Before training, every output folder is
checked for writability and free space (:mod:`dbd_lightning.utils.preflight`). Ctrl-C or SIGTERM ends
the job with one line giving the resume command and exit status 130 / 143 (:mod:`.utils.interrupts`).
Under DDP only global rank 0 writes the run's files.
"""

from __future__ import annotations

from . import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import logging
import os
import sys
import warnings

import hydra
from omegaconf import DictConfig

from .runs.resume import argv_for_resume, resume_advice
from .train_checks import precheck_train
from .utils.config import config_dir
from .utils.errors import handle_user_errors, hydra_log_file
from .utils.interrupts import handle_interrupts

log = logging.getLogger(__name__)
# conf/hydra/launcher/{joblib,submitit_slurm}.yaml replace the plugins' configs of the same name on purpose
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")
_ARGV = list(sys.argv)  # the command line as typed (DDP relaunches ranks with it, see main)


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit + test as the config says (:func:`dbd_lightning.runner.run_training`); returns the final scalar
    metrics. A config with a ``pipeline`` node (``experiment=ddffnet_paper``, ``btbnet_two_phase``)
    runs its declared stages instead (:mod:`dbd_lightning.pipelines.stages`). Lightning is imported here,
    not with the module (``--help`` needs none of it)."""
    if cfg.get("pipeline"):
        from .pipelines.stages import run_pipeline

        return run_pipeline(cfg)
    from .runner import run_training

    return run_training(cfg)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    from lightning.pytorch.utilities import rank_zero_only

    sys.argv = list(_ARGV)  # Lightning's DDP launcher re-runs this command line for the other ranks
    # Ctrl-C / SIGTERM: one line with the resume command (also in train.log), exit 130 / 143
    with handle_interrupts(lambda: resume_advice(cfg), log_file=hydra_log_file, show=rank_zero_only.rank == 0), \
            handle_user_errors():  # error: <message>, exit 2, also appended to the run's train.log
        metrics = run(cfg)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return value


def prepare_argv(argv: list[str], check: bool = True) -> list[str]:
    """The command line Hydra runs: ``run_dir=<folder>`` turned into the resume overrides (:mod:`.runs.resume`), and the composed
    config checked before Hydra creates any folder (:mod:`.train_checks`, memory preflight)."""
    argv = argv_for_resume(list(argv))
    if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0":
        check = False  # a DDP rank relaunched by Lightning: rank 0 checked (and holds GPU memory by now)
    if check:
        precheck_train(argv[1:])
    return argv


def main() -> float | None:
    """CLI entry point: resume overrides and the pre-run checks (:func:`prepare_argv`), then Hydra.

    A user error (bad value, missing data, unusable checkpoint, memory) prints ``error: <message>`` and
    exits with status 2 (:mod:`.utils.errors`); ``HYDRA_FULL_ERROR=1`` shows the traceback.
    """
    global _ARGV
    _ARGV = list(sys.argv)
    with handle_user_errors(log_file=False):  # before Hydra: no run folder yet, nothing is written
        sys.argv = prepare_argv(sys.argv)
    return _hydra_main()


if __name__ == "__main__":
    main()
