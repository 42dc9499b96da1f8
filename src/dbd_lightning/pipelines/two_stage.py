"""D-DFFNet in one command: stage 1 (defocus teacher), then stage 2 (distilled student).

    python -m dbd_lightning.pipelines.two_stage [overrides]        # experiment=ddffnet_two_stage
    python -m dbd_lightning.train experiment=ddffnet_two_stage [overrides]
    python -m dbd_lightning.train -m experiment=ddffnet_table4    # Table IV as a Hydra multirun

A config with a ``pipeline`` node is a stage-2 config (``experiment=ddffnet_stage2``
and its descendants). Stage 1 is composed from ``pipeline.stage1_experiment`` with
the same ``model`` and ``data`` group choices, ``loss=pipeline.stage1_loss``, the command-line
overrides that are not stage-2 specific (data, trainer, model.net.* ...) and
``pipeline.stage1_overrides``. It runs in ``<output_dir>/stage1``; its best
checkpoint (else ``last.ckpt``) becomes ``teacher.defocus.ckpt`` of stage 2,
which runs in ``<output_dir>/stage2``. Returned metrics: stage 2's, plus stage 1's
under ``stage1/`` (the "-" rows of Tables IV/VI).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from ..utils.errors import ConfigError

log = logging.getLogger(__name__)

# command-line keys that belong to stage 2 only (never passed to stage 1)
STAGE2_ONLY = ("experiment", "loss", "teacher", "pipeline", "callbacks.distillation", "hydra", "model.teachers",
               "model.feature_loss", "model.beta", "model.projector_lr", "model.projector_weight_decay",
               "model._target_")


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def stage1_overrides(task_overrides: list[str], stage2_only: tuple[str, ...] = STAGE2_ONLY) -> list[str]:
    """The overrides of a stage-2 command line that also apply to stage 1 (``model=`` excluded)."""
    keep = []
    for o in task_overrides:
        key = _key(o)
        if key == "model" or any(key == k or key.startswith(k + ".") for k in stage2_only):
            continue
        keep.append(o)
    return keep


def find_checkpoint(run_dir: Path) -> Path | None:
    """The best checkpoint of a run (ModelCheckpoint with save_top_k=1), else ``last.ckpt``."""
    ckpts = run_dir / "checkpoints"
    best = sorted(p for p in ckpts.glob("*.ckpt") if p.name != "last.ckpt") if ckpts.is_dir() else []
    if best:
        return max(best, key=lambda p: p.stat().st_mtime)
    last = ckpts / "last.ckpt"
    return last if last.is_file() else None


def _hydra_state() -> tuple[list[str], str | None, str | None]:
    """(task overrides, model group choice, data group choice) of the running Hydra job, if any."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [], None, None
    hc = HydraConfig.get()
    return list(hc.overrides.task), hc.runtime.choices.get("model"), hc.runtime.choices.get("data")


def compose_train(overrides: list[str]) -> DictConfig:
    """Compose ``conf/train.yaml`` with ``overrides`` (inside or outside a running Hydra app)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ..utils.config import config_dir

    if GlobalHydra.instance().is_initialized():
        return compose("train", overrides=overrides)
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=overrides)


def _save_stage_config(cfg: DictConfig, stage_dir: Path) -> None:
    """``<stage>/.hydra/config.yaml`` as Hydra writes it for a run, so ``dbd_lightning.eval
    run_dir=<out>/stage2`` rebuilds the stage's model."""
    (stage_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (stage_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))


def run_two_stage(cfg: DictConfig, run: Callable[[DictConfig], dict]) -> dict[str, float]:
    """Run stage 1 then stage 2 of ``cfg`` (a stage-2 config with a ``pipeline`` node).

    ``pipeline.kind: pretrain_finetune`` (BTBNet) goes to :mod:`.pretrain_finetune` instead.
    """
    from ..utils.report import write_metrics

    pipe = cfg.pipeline
    if pipe.get("kind") == "pretrain_finetune":
        from .pretrain_finetune import run_pretrain_finetune

        return run_pretrain_finetune(cfg, run)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    task_overrides, model_choice, data_choice = _hydra_state()
    model_choice = pipe.get("stage1_model") or model_choice
    if not model_choice:
        raise ConfigError("two-stage pipeline: set pipeline.stage1_model (no Hydra model choice to copy)")

    # ------------------------------------------------------------- stage 1
    # stage 1 trains on stage 2's data: its group choice is passed on even when an experiment
    # config (not the command line) made it, e.g. experiment=ddffnet_table1 -> data=cuhk_tr1_all_tests
    data = [f"data={data_choice}"] if data_choice and not any(_key(o) == "data" for o in task_overrides) else []
    s1 = [f"experiment={pipe.stage1_experiment}", f"model={model_choice}", f"loss={pipe.stage1_loss}", *data,
          *stage1_overrides(task_overrides), *list(pipe.get("stage1_overrides") or [])]
    log.info("stage 1 overrides: %s", s1)
    cfg1 = compose_train(s1)
    with open_dict(cfg1):
        for key in ("root_dir", "data_dir", "log_dir"):
            cfg1.paths[key] = cfg.paths[key]
        cfg1.paths.output_dir = str(out / "stage1")
        cfg1.pop("hydra", None)
    _save_stage_config(cfg1, out / "stage1")
    metrics1 = run(cfg1)
    ckpt = find_checkpoint(out / "stage1")
    if ckpt is None:
        log.warning("stage 1 saved no checkpoint (fast_dev_run?): stage 2 uses a random defocus teacher")

    # ------------------------------------------------------------- stage 2
    cfg2 = cfg.copy()
    with open_dict(cfg2):
        del cfg2["pipeline"]
        cfg2.teacher.defocus.ckpt = str(ckpt) if ckpt else None
        cfg2.paths.output_dir = str(out / "stage2")
    _save_stage_config(cfg2, out / "stage2")
    metrics2 = run(cfg2)
    metrics = {**{f"stage1/{k}": v for k, v in metrics1.items()}, **metrics2}
    write_metrics(out / "metrics.json", metrics)
    (out / "stage1_checkpoint.txt").write_text(f"{ckpt or ''}\n")
    return metrics


def main() -> None:
    """``python -m dbd_lightning.pipelines.two_stage [overrides]``: ``experiment=ddffnet_two_stage`` by default."""
    if not any(a.split("=", 1)[0].lstrip("+") == "experiment" for a in sys.argv[1:]):
        sys.argv.append("experiment=ddffnet_two_stage")
    from ..train import main as train_main

    train_main()


if __name__ == "__main__":
    main()
