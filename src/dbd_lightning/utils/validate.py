"""Checks of a command line's config *before* Hydra creates an output folder (nothing is written): the
ones that need neither the papers nor a run folder.

* :func:`precompose` (eval, predict, export): the config is composed once, so an unknown option or key
  is a :class:`~dbd_lightning.utils.errors.ConfigError` (exit 2, no output folder), and a mandatory key
  left unset is named with an example value (:func:`check_missing_values`);
* for ``python -m dbd_lightning.train`` (run, with the checks that need the papers or the run folder, by
  :func:`dbd_lightning.train_checks.precheck_train`): a value that cannot work
  (:func:`validate_train_config`: every key of :data:`TRAIN_KEY_CHECKS`, ``data.batch_size=abc`` / ``-2``,
  a bad ``data.image_size``, ``test=maybe``, ``compile.mode=fast``, ...; :mod:`.key_checks`; the arguments
  the data config gives a class that declares ``ARG_CHECKS``, :func:`check_data_args`; a key that is no
  argument of the class it builds),
  a benchmark the data config uses that is not on disk (:func:`check_data_present`: one paragraph with the
  ``python -m dbd_lightning.data.prepare`` command), a ``ckpt_path`` naming a missing or unreadable
  checkpoint (:func:`check_ckpt_path`).

Hydra's own composition errors (an unknown ``model=`` option, a key not in the config) come
out the same way (``error: ...``, exit 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from . import key_checks as kc
from .errors import ConfigError, UserError

log = logging.getLogger(__name__)

class DataMissingError(UserError, FileNotFoundError):
    """A benchmark the data config uses is not on disk."""


#: key -> smallest allowed value (whole numbers)
INT_KEYS = {"data.batch_size": 1, "data.eval_batch_size": 1, "data.num_workers": 0, "trainer.max_epochs": -1,
            "trainer.min_epochs": 0, "trainer.log_every_n_steps": 1, "trainer.check_val_every_n_epoch": 1}
_INT_EXAMPLES = {"data.batch_size": 6, "data.eval_batch_size": 6, "data.num_workers": 2, "trainer.max_epochs": 75}
#: torch.compile's modes (``compile.mode``; null = its default)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: train's documented keys (conf/train.yaml, the data configs' common ones): type, range, choices, paths.
#: The data configs' dataset / datamodule arguments are checked by their classes' ``ARG_CHECKS``
#: (:func:`check_data_args`), the optimizer's numbers and the constructor nodes' keys below.
TRAIN_KEY_CHECKS: dict[str, kc.Check] = {
    **{key: kc.whole(low, example=_INT_EXAMPLES.get(key, max(low, 1)), nullable=key.startswith("trainer."))
       for key, low in INT_KEYS.items()},
    "data.image_size": kc.image_size(nullable=True),
    "train": kc.flag(),
    "test": kc.flag(),
    "test_ckpt": kc.existing("file", example="best", words=("best", "last", "current")),
    "compile.enabled": kc.flag(),
    "compile.mode": kc.choice(COMPILE_MODES, nullable=True),
    "compile.dynamic": kc.flag(nullable=True),
    "compile.fullgraph": kc.flag(),
    "preflight.memory": kc.flag(nullable=True),
    "preflight.min_free_mb": kc.number(0, example=500, nullable=True),
    "real_report.enabled": kc.flag(),
    # callbacks=ema (Lightning's EMAWeightAveraging checks none of these: decay=1.5 would train silently wrong)
    "callbacks.weight_ema.decay": kc.number(0, below=1, example=0.995),
    "callbacks.weight_ema.update_every_n_steps": kc.whole(1, example=1),
    "callbacks.weight_ema.update_starting_at_step": kc.whole(0, example=100, nullable=True),
}
#: flags that make Hydra do something else than run the job (no check then)
SKIP_FLAGS = ("--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i", "--resolve", "--package", "-p",
              "--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun",
              "--shell-completion", "-sc", "--version")
#: at most this many jobs of a sweep are composed and checked
MAX_SWEEP_JOBS = 16


def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)


#: config nodes built by one class whose keys must be that class's arguments (a key added with ``+``)
CONSTRUCTOR_NODES = ("trainer", "model.optimizer", "model.scheduler")


def check_constructor_keys(cfg: DictConfig) -> None:
    """Every key of ``trainer`` / ``model.optimizer`` / ``model.scheduler`` must be an argument of the
    class it builds (``+trainer.max_epoch=4`` would otherwise fail inside Lightning with a traceback)."""
    import inspect

    import hydra

    from .config_hints import _closest

    for node_key in CONSTRUCTOR_NODES:
        node = _select(cfg, node_key)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        try:
            params = inspect.signature(hydra.utils.get_object(str(node._target_))).parameters
        except Exception:  # an unimportable target: instantiation names it
            continue
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        known = [k for k in params if k != "self"]
        for key in node:
            if str(key).startswith("_") or key in params:
                continue
            close = _closest(str(key), known)
            hint = f"did you mean {' or '.join(f'{node_key}.{c}' for c in close)}? " if close else ""
            raise ConfigError(f"{node_key}.{key} is not an argument of {node._target_}: {hint}"
                              f"(remove the key, e.g. drop the +{node_key}.{key}=... override)")


#: optimizer keys that must be non-negative numbers
OPTIMIZER_NUMBERS = ("lr", "weight_decay", "momentum", "eps")


def check_accelerator(cfg: DictConfig) -> None:
    """``trainer=gpu`` / ``ddp`` (CUDA) on a machine without a CUDA GPU: one line instead of a driver traceback."""
    accelerator = str(_select(cfg, "trainer.accelerator") or "")
    if accelerator not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={accelerator} but this machine has no usable CUDA GPU "
                          "(torch.cuda.is_available() is False); use trainer=cpu (or trainer=ddp_cpu)")


def validate_train_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for a value that cannot work (module docstring)."""
    check_constructor_keys(cfg)
    check_accelerator(cfg)
    for key in OPTIMIZER_NUMBERS:
        value = _select(cfg, f"model.optimizer.{key}")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ConfigError(f"model.optimizer.{key}={value!r} is not valid: it must be a number >= 0 "
                              f"(e.g. model.optimizer.{key}={'1e-4' if key == 'lr' else 0})")
    kc.check_keys(cfg, TRAIN_KEY_CHECKS)
    check_data_args(cfg)


def _interpolated_key(node: DictConfig, arg: str) -> str | None:
    """``data.train_length`` for ``length: ${data.train_length}``: the key the user sets for ``arg``."""
    import re

    raw = node._get_node(arg)._value()
    match = re.fullmatch(r"\$\{([\w.]+)\}", raw) if isinstance(raw, str) else None
    return match.group(1) if match else None


def check_data_args(cfg: DictConfig, root: str = "data.datamodule") -> None:
    """Every node under ``root`` whose ``_target_`` class declares ``ARG_CHECKS`` (argument ->
    :class:`~.key_checks.Check`, e.g. the synthetic dataset's ``length`` / ``preset`` / ``size``) has those
    arguments checked before the run; the message names the key the user sets: the ``data.<key>`` the
    argument interpolates (``length: ${data.train_length}``), else the argument's own path."""
    import hydra

    def walk(node: DictConfig, path: str, depth: int) -> None:
        target = node._get_node("_target_")._value() if "_target_" in node else None
        if isinstance(target, str):
            try:
                checks = getattr(hydra.utils.get_object(target), "ARG_CHECKS", None) or {}
            except Exception:  # an unimportable target: instantiation names it
                checks = {}
            for arg, check in checks.items():
                if arg not in node:
                    continue
                try:
                    value = node[arg]
                except Exception:  # an interpolation that does not resolve: composing / instantiating says so
                    continue
                kc.check_value(_interpolated_key(node, arg) or f"{path}.{arg}", value, check)
        if depth < 4:
            for key in node:
                child = node._get_node(key)
                if isinstance(child, DictConfig) and not child._is_none() and not child._is_interpolation():
                    walk(child, f"{path}.{key}", depth + 1)

    node = _select(cfg, root)
    if isinstance(node, DictConfig):
        walk(node, root, 0)


def dataset_nodes(cfg: DictConfig):
    """``(split, name, node)`` for every dataset config node of ``data.datamodule``'s train / val / test
    (a disabled ``null`` entry is left out): what the data prechecks walk."""
    dm = _select(cfg, "data.datamodule")
    if dm is None:
        return
    for split in ("train", "val", "test"):
        sets = dm.get(split) or {}
        for name, node in sets.items() if hasattr(sets, "items") else ():
            if isinstance(node, DictConfig):
                yield split, name, node


def check_data_present(cfg: DictConfig) -> None:
    """Raise one readable :class:`DataMissingError` paragraph when a benchmark a data config uses is not
    on disk: what is missing, where it looked, and the ``data.prepare`` command that imports it."""
    import hydra

    missing: dict[str, dict[str, Any]] = {}
    for split, name, node in dataset_nodes(cfg):
        target = str(_select(node, "_target_") or "")
        if not target.startswith("dbd_lightning.data.benchmarks.") or _select(node, "optional") is True:
            continue  # an optional set (e.g. TE-1 when withheld) is left out by the datamodule, said once
        try:
            cls = hydra.utils.get_class(target)
            root = Path(str(_select(node, "root"))).expanduser()
            images, _ = cls.FOLDERS[str(_select(node, "split") or "all")]
        except Exception:  # an unusual node: the datamodule's own check reports it
            continue
        if any((root / c).is_dir() for c in images):
            continue
        entry = missing.setdefault(cls.NAME, {"root": root, "looked": [str(root / c) for c in images], "uses": []})
        entry["uses"].append(f"{split} {name}")
    if not missing:
        return
    data_name = _select(cfg, "data.name") or "this data config"
    parts = []
    for bench, e in missing.items():
        state = "does not exist" if not e["root"].exists() else "has no image folder"
        parts.append(f"the {bench} benchmark ({', '.join(dict.fromkeys(e['uses']))}): {e['root']} {state} "
                     f"(looked for {', '.join(e['looked'])})")
    cmds = "; ".join(f"python -m dbd_lightning.data.prepare {b.lower()} <downloaded {b} archive or folder> "
                     f"--root {next(iter(missing.values()))['root'].parent}" for b in missing)
    raise DataMissingError(
        f"data={data_name} needs {'; '.join(parts)}. Download the benchmark and import it with: {cmds} "
        "(see src/dbd_lightning/data/README.md for the download pages), or point data.root (or the DBD_DATA_ROOT "
        "environment variable) at the folder that already holds it. Nothing was written.")


def check_ckpt_path(cfg: DictConfig) -> None:
    """``ckpt_path=<file>`` (not ``last``/``hpc``) must be a readable checkpoint."""
    ckpt = _select(cfg, "ckpt_path")
    if ckpt in (None, "", "last", "hpc"):
        return
    from .checkpoint import read_checkpoint

    read_checkpoint(Path(str(ckpt)).expanduser(), key="ckpt_path")


def _job_overrides(args: list[str]) -> tuple[list[list[str]], bool] | None:
    """The override lists of the run (one) or of each job of a basic multirun sweep; ``None``: do not check."""
    if any(a in SKIP_FLAGS or a.split("=", 1)[0] in SKIP_FLAGS for a in args):
        return None
    multirun = any(a in ("-m", "--multirun") for a in args)
    overrides = [a for a in args if a not in ("-m", "--multirun")]
    if any(a.startswith("-") for a in overrides):
        return None
    if not multirun:
        return [overrides], False
    if any(a.split("=", 1)[0].lstrip("+") in ("hparams_search", "hydra/sweeper") for a in overrides):
        return None  # another sweeper chooses the values
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    except Exception as exc:  # Hydra reports a bad override itself, with its own wording
        from .errors import user_error_in

        error = user_error_in(exc)
        if error is not None:
            raise error from exc
        return None
    return [list(job) for batch in batches for job in batch], True


def precompose(config_name: str, args: list[str], check: Callable[[DictConfig], None] | None = None) -> None:
    """Compose ``config_name`` with the command line's overrides once before Hydra runs, so an unknown
    option or key is a :class:`ConfigError` (exit 2, no output folder) rather than Hydra's exit 1.
    ``check(cfg)`` (the command's typed key checks, :mod:`.key_checks`, and e.g. predict's inference settings)
    runs on each composed job's config: a bad value stops there, before anything is loaded or written."""
    jobs = _job_overrides(args)
    if jobs is None:
        return
    from hydra import compose, initialize_config_dir

    from .config import config_dir
    from .errors import user_error_in

    job_list, _ = jobs
    with initialize_config_dir(config_dir(), version_base="1.3"):
        for overrides in job_list[:MAX_SWEEP_JOBS]:
            try:
                cfg = compose(config_name, overrides=overrides)
            except Exception as exc:
                error = user_error_in(exc)
                if error is None:
                    raise
                raise error from exc
            check_missing_values(cfg, config_name)
            if check is not None:
                check(cfg)


def check_missing_values(cfg: DictConfig, command: str) -> None:
    """A mandatory key left unset (``data=folder`` without ``data.root``): name it and an example value."""
    from .config_hints import missing_value_hint

    hint = missing_value_hint(cfg, command)
    if hint:
        raise ConfigError(hint)
