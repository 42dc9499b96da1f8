"""The train command's checks of its command line *before* Hydra creates the run folder (nothing is written).

``python -m dbd_lightning.train`` composes the config once more with Hydra's compose API
(:func:`precheck_train`; every job of a simple multirun sweep) and stops with a
:class:`~dbd_lightning.utils.errors.UserError` naming the key and the fix when:

* a value cannot work (:func:`dbd_lightning.utils.validate.validate_train_config`): ``data.batch_size=abc``
  / ``-2``, a negative ``data.num_workers``, a bad ``data.image_size`` or ``trainer.max_epochs``;
* the model cannot train on the data (:func:`check_model_fits_data`): a pipeline (a paper's
  ``PAPER.pipelines``) or a patch classifier with image data (``Task.trains_on`` vs the datamodule's
  ``PAPER.data_serves``);
* the run / sweep folder cannot be written (:func:`~dbd_lightning.utils.preflight.check_writable`);
* a benchmark the data config uses is not on disk (:func:`~dbd_lightning.utils.validate.check_data_present`:
  one paragraph with the ``python -m dbd_lightning.data.prepare`` command), or a plain folder is not
  (:func:`check_folders_present`: ``data=folder``'s ``image/`` and ``gt/``, ``data.unlabeled_root``);
* ``ckpt_path`` names a missing or unreadable checkpoint;
* a resume (``run_dir=R ckpt_path=last``) would run another model / data / loss than the run's
  own config (:func:`~dbd_lightning.runs.resume.check_resume_config`), or its run folder cannot be
  written or lacks the free space (:func:`~dbd_lightning.runs.resume.preflight_resume`);
* one training step does not fit in memory (:mod:`dbd_lightning.utils.memory`,
  ``preflight.memory``).

Hydra's own composition errors (an unknown ``model=`` option, a key not in the config) come
out the same way (``error: ...``, exit 2). The checks of values alone live in
:mod:`dbd_lightning.utils.validate` (eval, predict and export use them too); the ones here need the papers'
declarations (:mod:`dbd_lightning.models.registry`) or a run folder (:mod:`dbd_lightning.runs.resume`).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from .utils.errors import ConfigError, UserError
from .utils.validate import (
    MAX_SWEEP_JOBS,
    _job_overrides,
    _select,
    check_ckpt_path,
    check_data_present,
    check_missing_values,
    dataset_nodes,
    validate_train_config,
)


def check_train_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for a value that cannot work (:func:`validate_train_config`, which also checks
    ``preflight.*``) or a model that cannot train on the data (:func:`check_model_fits_data`)."""
    validate_train_config(cfg)
    check_model_fits_data(cfg)


def check_model_fits_data(cfg: DictConfig) -> None:
    """The model trains on what the data serves (``Task.trains_on`` vs the paper-declared ``data_serves``):
    a pipeline (``PAPER.pipelines``, e.g. ``model=karaali``) trains on nothing; a patch classifier needs its
    patch data and patch data needs it. The advice comes from the paper's declaration
    (:mod:`dbd_lightning.models.registry`)."""
    from .models import registry
    from .utils.config import trainable_on

    choice = _select(cfg, "hydra.runtime.choices.model")
    if choice in registry.pipelines():
        raise ConfigError(f"model={choice} is a pipeline, not a trainable network: {registry.pipelines()[choice]}")
    trains_on = trainable_on(cfg)
    model_target = str(_select(cfg, "model._target_") or "")
    paper = registry.paper_of(model_target) or registry.paper_of(str(_select(cfg, "model.net._target_") or ""))
    advice = f" ({paper.train_advice})" if paper is not None and paper.train_advice else ""
    if trains_on is None:
        raise ConfigError(f"model config {model_target} is a pipeline, not a trainable network{advice}")
    data_target = str(_select(cfg, "data.datamodule._target_") or "")
    data_name = _select(cfg, "data.name")
    serves = registry.data_serves(data_target)
    if trains_on == serves:
        return
    if trains_on != "images":
        raise ConfigError(f"model={choice or model_target} is a patch classifier (it trains on {trains_on}), but "
                          f"data={data_name} holds images with masks{advice}")
    data_paper = registry.paper_of(data_target)
    data_advice = f" ({data_paper.train_advice})" if data_paper is not None and data_paper.train_advice else ""
    raise ConfigError(f"data={data_name} holds {serves.replace('_', ' ')}, which this model does not train on"
                      f"{data_advice}; choose a DBD data config (data=synthetic, data=cuhk_tr1, ...)")


def check_folders_present(cfg: DictConfig) -> None:
    """``data=folder``'s image/gt folders and ``data.unlabeled_root``: the datasets' own errors, said here,
    before the memory estimate and the model are built (a missing folder then fails the same on every machine)."""
    from .data.errors import DataConfigError, DatasetLayoutError
    from .data.folder import missing_folders_message
    from .data.unlabeled import missing_unlabeled_message

    for _, _, node in dataset_nodes(cfg):
        if _select(node, "_target_") != "dbd_lightning.data.folder.ImageMaskFolder":
            continue
        try:
            root, image_dir, gt_dir = (str(_select(node, k) or d) for k, d in
                                       (("root", ""), ("image_dir", "image"), ("gt_dir", "gt")))
        except Exception:  # an unusual node: the dataset's own check reports it
            continue
        message = missing_folders_message(root, image_dir, gt_dir) if root else None
        if message:
            raise DatasetLayoutError(f"{message}. Nothing was written.")
    unlabeled = _select(cfg, "data.unlabeled_root")
    message = missing_unlabeled_message(str(unlabeled)) if unlabeled is not None else None
    if message:
        raise DataConfigError(f"{message}. Nothing was written.")


def paper_with_experiment_hint(text: str, overrides: list[str]) -> str | None:
    """``experiment=X model=<paper>``: the paper option brings its own experiment, and a group both include
    appears twice; say so (Hydra's message names only the group)."""
    if "appears more than once" not in text:
        return None
    from .models.registry import presets

    values = dict(o.lstrip("+").split("=", 1) for o in overrides if "=" in o and not o.startswith("~"))
    model, experiment = values.get("model"), values.get("experiment")
    if model not in presets() or experiment is None:
        return None
    return (f"model={model} is the paper's whole recipe (experiment={presets()[model]}) and experiment={experiment} "
            f"brings its own: {text.strip().splitlines()[0]}. Drop experiment= to run the paper's recipe, or keep it "
            f"and choose the network alone (python -m dbd_lightning.train --info defaults-tree experiment={experiment} "
            "shows which model option it selects)")


def _compose_or_hint(compose, overrides: list[str]) -> DictConfig:
    """Compose the train config; a misspelt key or group option becomes a :class:`ConfigError` with
    "did you mean" (:mod:`dbd_lightning.utils.config_hints`) instead of Hydra's advice to add the typo with ``+``."""
    try:
        return compose("train", overrides=overrides, return_hydra_config=True)
    except Exception as exc:
        if not type(exc).__module__.startswith("hydra"):
            raise
        from hydra.core.global_hydra import GlobalHydra

        from .utils.config_hints import unknown_group_option_hint, unknown_key_hint

        def options(group: str) -> list[str]:
            return GlobalHydra.instance().config_loader().get_group_options(group)

        text = str(exc)
        hint = (unknown_key_hint(text, overrides, lambda rest: compose("train", overrides=rest))
                or unknown_group_option_hint(text, options) or paper_with_experiment_hint(text, overrides))
        if hint is None:
            raise
        raise ConfigError(hint + ". Nothing was written.") from None


def precheck_train(args: list[str], memory: bool = True) -> None:
    """Compose the train config of ``args`` (each sweep job) and run the checks (module docstring)."""
    jobs = _job_overrides(args)
    if jobs is None:
        return
    job_list, multirun = jobs
    from hydra import compose, initialize_config_dir

    from .utils.config import config_dir
    from .utils.preflight import check_writable

    with initialize_config_dir(config_dir(), version_base="1.3"):
        for n, overrides in enumerate(job_list[:MAX_SWEEP_JOBS]):
            cfg = _compose_or_hint(compose, overrides)
            where = f" (sweep job {n}: {' '.join(overrides)})" if multirun and len(job_list) > 1 else ""
            try:
                check_missing_values(cfg, "train")
                check_train_config(cfg)
                check_ckpt_path(cfg)
                check_data_present(cfg)
                check_folders_present(cfg)
            except UserError as exc:  # a config value, a missing benchmark or folder: name the sweep job
                raise type(exc)(exc.message + where) from exc
            run_dir = _select(cfg, "run_dir")
            if run_dir and not multirun:
                from .runs.resume import check_resume_config, preflight_resume, resolve_ckpt_path

                folder = Path(str(run_dir)).expanduser()
                ckpt = resolve_ckpt_path(cfg, folder)
                if ckpt and ckpt != "hpc":
                    from .utils.checkpoint import read_checkpoint

                    read_checkpoint(ckpt, key="ckpt_path", mmap=True)
                check_resume_config(folder, cfg)
                preflight_resume(Path(str(_select(cfg, "hydra.run.dir") or folder)).expanduser(), cfg, ckpt)
            if n == 0:
                key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
                folder = _select(cfg, key)
                if folder and not _select(cfg, "run_dir"):
                    check_writable(folder, role=f"output folder ({key})", create=False)
            if memory and _select(cfg, "preflight.memory") is not False and _select(cfg, "train") is not False:
                from .utils.memory import check_training_memory

                check_training_memory(cfg)
