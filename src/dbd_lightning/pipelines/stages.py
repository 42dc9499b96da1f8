"""Staged pipelines declared in config: one command runs several trainings, each passing on its checkpoint.

A config with a ``pipeline`` node (``conf/pipeline/*.yaml``, pulled in by an experiment:
``experiment=ddffnet_paper``, ``experiment=btbnet_two_phase``) runs ``pipeline.stages`` in order,
each in ``<output_dir>/<name>``::

    pipeline:
      stages:
        - name: stage1             # folder <out>/stage1; its metrics come back as stage1/<metric>
          experiment: dffnet_paper  # compose conf/train.yaml with experiment=<this>;
                                   # null = this config itself (without its `pipeline` node)
          groups: {model: null, loss: bce_edge}  # group choices; null = the running job's choice
          drop: [teacher, loss]    # command-line keys (and their sub-keys) this stage does not get
          keep: []                 # exact command-line keys it gets even when `drop` covers them
          overrides: []            # extra overrides of this stage only
          pass_on: {teacher.defocus.ckpt: best}  # keys of the next stage set to this stage's checkpoint
        - name: stage2
          experiment: null

A composed stage gets ``experiment=<experiment>``, its ``groups``, the running job's command-line
overrides minus ``experiment`` / ``pipeline`` / ``hydra``, the group keys and ``drop`` (``keep``
wins), then ``overrides``; its ``paths.{root,data,log}_dir`` are this config's. A ``pass_on`` value is
a :func:`~dbd_lightning.runs.resolver.find_checkpoint` choice (``best`` | ``last``): ``best`` is the
checkpoint ModelCheckpoint recorded as best; ``None`` (and a warning) when the stage saved none
(``fast_dev_run``). Every passed checkpoint is also written to ``<out>/<name>_checkpoint.txt``.

Returned metrics (and ``<out>/metrics.json``): the last stage's, plus every earlier stage's under
``<name>/``. Each stage folder holds ``.hydra/config.yaml`` as Hydra writes it for a run, so
``dbd_lightning.eval run_dir=<out>/<name>`` rebuilds the stage's model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from ..runner import run_training
from ..runs.resolver import find_checkpoint
from ..utils.config import config_dir
from ..utils.errors import ConfigError
from ..utils.report import write_metrics

__all__ = ["ALWAYS_DROPPED", "compose_train", "hydra_state", "run_pipeline", "stage_overrides"]

log = logging.getLogger(__name__)

#: command-line keys never passed to a composed stage: they choose or configure the pipeline itself
ALWAYS_DROPPED = ("experiment", "pipeline", "hydra")
_STAGE_KEYS = {"name", "experiment", "groups", "drop", "keep", "overrides", "pass_on"}


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def stage_overrides(task_overrides: Sequence[str], stage: Mapping) -> list[str]:
    """The running job's command-line overrides that also apply to the composed ``stage``."""
    groups = set((stage.get("groups") or {}).keys())
    keep = set(stage.get("keep") or ())
    drop = (*ALWAYS_DROPPED, *(stage.get("drop") or ()))
    passed = []
    for o in task_overrides:
        key = _key(o)
        if key not in keep and (key in groups or any(key == k or key.startswith(k + ".") for k in drop)):
            continue
        passed.append(o)
    return passed


def hydra_state() -> tuple[list[str], dict[str, str]]:
    """(task overrides, group choices) of the running Hydra job; empty outside one."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [], {}
    hc = HydraConfig.get()
    return list(hc.overrides.task), {k: v for k, v in hc.runtime.choices.items() if isinstance(v, str)}


def compose_train(overrides: list[str]) -> DictConfig:
    """Compose ``conf/train.yaml`` with ``overrides`` (inside or outside a running Hydra app)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose("train", overrides=overrides)
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=overrides)


def _save_stage_config(cfg: DictConfig, stage_dir: Path) -> None:
    """``<stage>/.hydra/config.yaml`` as Hydra writes it for a run (eval and predict rebuild the model from it)."""
    (stage_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (stage_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))


def _check_stages(stages) -> None:
    if not stages:
        raise ConfigError("pipeline.stages is empty: declare at least one stage (see conf/pipeline/)")
    names = [s.get("name") for s in stages]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ConfigError(f"pipeline.stages: every stage needs its own name, got {names}")
    for i, s in enumerate(stages):
        unknown = sorted(set(s.keys()) - _STAGE_KEYS)
        if unknown:
            raise ConfigError(f"pipeline.stages[{i}] ({s.name}): unknown key(s) {unknown}; "
                              f"a stage has {sorted(_STAGE_KEYS)}")
        if s.get("experiment") is None and (s.get("groups") or s.get("overrides") or s.get("drop") or s.get("keep")):
            raise ConfigError(f"pipeline.stages[{i}] ({s.name}) is this config itself (experiment: null): it takes "
                              "no groups/overrides/drop/keep; put them on the command line or in the experiment")
    if stages[-1].get("pass_on"):
        raise ConfigError(f"pipeline.stages[-1] ({stages[-1].name}) has pass_on but no stage follows it")


def _override_value(value: str | None) -> str:
    """A checkpoint path as a Hydra override value (quoted: paths may hold spaces or ``=``)."""
    if value is None:
        return "null"
    return "'" + value.replace("'", "\\'") + "'"


def _stage_config(cfg: DictConfig, stage, received: dict[str, str | None], out: Path,
                  task_overrides: list[str], choices: dict[str, str]) -> DictConfig:
    """The composed config of one stage, its ``paths`` pointing at ``<out>/<name>``."""
    if stage.get("experiment") is None:  # this config itself
        stage_cfg = cfg.copy()
        with open_dict(stage_cfg):
            del stage_cfg["pipeline"]
            for key, value in received.items():
                OmegaConf.update(stage_cfg, key, value, force_add=True)
            stage_cfg.paths.output_dir = str(out / stage.name)
        return stage_cfg
    groups = []
    for group, choice in (stage.get("groups") or {}).items():
        choice = choice if choice is not None else choices.get(group)
        if choice is None:
            raise ConfigError(f"pipeline stage {stage.name}: no running `{group}` choice to copy; "
                              f"set pipeline.stages[].groups.{group} (or the pipeline's own key for it)")
        groups.append(f"{group}={choice}")
    passed = [f"++{key}={_override_value(value)}" for key, value in received.items()]  # set or add
    overrides = [f"experiment={stage.experiment}", *groups, *stage_overrides(task_overrides, stage),
                 *list(stage.get("overrides") or []), *passed]
    log.info("%s overrides: %s", stage.name, overrides)
    stage_cfg = compose_train(overrides)
    with open_dict(stage_cfg):
        for key in ("root_dir", "data_dir", "log_dir"):
            stage_cfg.paths[key] = cfg.paths[key]
        stage_cfg.paths.output_dir = str(out / stage.name)
        stage_cfg.pop("hydra", None)
    return stage_cfg


def run_pipeline(cfg: DictConfig, run: Callable[[DictConfig], dict] = run_training) -> dict[str, float]:
    """Run ``cfg.pipeline.stages`` in order (see the module docstring); ``run`` trains one stage's config."""
    stages = list(cfg.pipeline.get("stages") or [])
    _check_stages(stages)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    task_overrides, choices = hydra_state()
    received: dict[str, str | None] = {}
    metrics: dict[str, float] = {}
    for i, stage in enumerate(stages):
        stage_cfg = _stage_config(cfg, stage, received, out, task_overrides, choices)
        _save_stage_config(stage_cfg, out / stage.name)
        stage_metrics = run(stage_cfg)
        last = i == len(stages) - 1
        metrics.update(stage_metrics if last else {f"{stage.name}/{k}": v for k, v in stage_metrics.items()})
        received = {}
        for key, which in (stage.get("pass_on") or {}).items():
            ckpt = find_checkpoint(out / stage.name, str(which), required=False)
            if ckpt is None:
                log.warning("%s saved no %s checkpoint (fast_dev_run?): %s of %s stays null",
                            stage.name, which, key, stages[i + 1].name)
            received[key] = str(ckpt) if ckpt else None
            (out / f"{stage.name}_checkpoint.txt").write_text(f"{ckpt or ''}\n")
    write_metrics(out / "metrics.json", metrics)
    return metrics
