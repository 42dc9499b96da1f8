"""Continue a killed or finished run: ``python -m dbd_lightning.train run_dir=<run folder> ckpt_path=last``.

How a run is pointed at (see README "Resume"):

* ``run_dir=<folder>`` names the run to continue. :func:`argv_for_resume` turns it
  into Hydra overrides before Hydra starts: ``hydra.run.dir=<folder>`` (the run
  goes on writing into its own folder: same ``checkpoints/``, logs, results),
  ``hydra.output_subdir=.hydra_resume/<time>`` (the original ``.hydra/config.yaml``,
  which ``dbd_lightning.eval`` reads, is kept) and ``ckpt_path=last`` unless given.
* the run's own overrides (``<folder>/.hydra/overrides.yaml``) are put in front of the
  command line's (:func:`saved_overrides`): the resume composes the run's config without
  repeating them; :func:`check_resume_config` (called by ``train`` before Hydra starts) stops
  when the result differs from ``.hydra/config.yaml`` in the model, data, loss or metrics.
* ``ckpt_path=last`` resolves to ``<run_dir>/checkpoints/last.ckpt``
  (:func:`resolve_ckpt_path`, through :func:`dbd_lightning.runs.resolver.find_checkpoint`). Without ``run_dir`` it means "this run's own
  ``last.ckpt`` if it exists, else start fresh" (auto-resume, e.g. a requeued
  cluster job with a fixed ``hydra.run.dir``). ``ckpt_path=hpc`` is Lightning's
  SLURM requeue checkpoint, passed through.

Lightning restores weights, optimizer, LR scheduler, loop counters and callback
states (the distillation beta is a pure function of the epoch and so follows);
:class:`~dbd_lightning.callbacks.RNGStateCheckpoint` restores the RNGs and
:mod:`dbd_lightning.data.sampler` makes the data order and augmentation a function
of (seed, epoch, index). A run killed mid-epoch restarts that epoch from its
beginning with the state of the last checkpoint.
"""

from __future__ import annotations

import logging
import re
import shlex
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..utils.errors import ConfigError, UserError
from .renames import migrate_config, migrate_overrides
from .resolver import CHECKPOINT_DIR, LAST, checkpoints_of, find_checkpoint
from .run import is_run_dir

log = logging.getLogger(__name__)

class RunDirError(UserError, FileNotFoundError):
    """``run_dir`` / ``ckpt_path`` that name no usable run or checkpoint."""


#: keys that may differ between the original run and its continuation without a warning
EXPECTED_CHANGES = ("ckpt_path", "run_dir", "trainer.max_epochs", "paths.", "hydra.", "callbacks.distillation.last_epoch")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def argv_for_resume(argv: list[str]) -> list[str]:
    """Add the Hydra overrides implied by ``run_dir=<folder>`` (module docstring) to a command line."""
    args = argv[1:]
    given = [a for a in args if a.startswith("run_dir=")]
    if not given:
        return list(argv)
    if any(a in ("-m", "--multirun") for a in args):
        raise ConfigError("run_dir=... continues one run; it cannot be combined with -m/--multirun")
    folder = given[-1].split("=", 1)[1].strip("'\"")
    if not folder or folder in ("null", "None"):
        return list(argv)
    args = [*saved_overrides(Path(folder).expanduser(), args), *args]
    extra = []
    if not any(a.startswith(("hydra.run.dir=", "++hydra.run.dir=")) for a in args):
        extra.append(f"hydra.run.dir={_quote(str(Path(folder).expanduser()))}")
    if not any(a.startswith("hydra.output_subdir=") for a in args):
        extra.append("hydra.output_subdir=.hydra_resume/${now:%Y-%m-%d_%H-%M-%S}")
    if not any(a.startswith("ckpt_path=") for a in args):
        extra.append("ckpt_path=last")
    return [argv[0], *args, *extra]


def _override_key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


#: saved overrides a resume never repeats: it names its own checkpoint, and the run folder is ``run_dir``
#: itself (a ``paths.output_dir=<abs path>`` saved in a copied or moved run names the *original* folder:
#: repeating it would write the continuation there)
NOT_REPEATED = ("run_dir", "ckpt_path", "paths.output_dir")


def saved_overrides(run_dir: Path, args: list[str]) -> list[str]:
    """The original run's command-line overrides (``.hydra/overrides.yaml``) that ``args`` does not set
    again, less :data:`NOT_REPEATED`: a resume composes the run's own config without repeating them
    (later ``args`` still win)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    try:
        saved = [str(o) for o in (OmegaConf.load(path) or [])]
    except Exception as exc:
        raise ConfigError(f"run_dir={run_dir}: cannot read {path} ({exc}); repeat the run's overrides on the "
                          "command line instead") from exc
    saved = migrate_overrides(saved)  # experiment / key names renamed since the run was made
    given = {_override_key(a) for a in args}
    return [o for o in saved if _override_key(o) not in given and _override_key(o) not in NOT_REPEATED]


#: config subtrees that must be the same in a resumed run as in the original (else the checkpoint
#: does not fit, or the run would silently continue on other data / with another loss)
RESUME_FIXED = ("model.", "data.", "loss.", "metrics.", "teacher.")


def check_resume_config(run_dir: Path, cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` when ``cfg`` differs from the run's saved config in :data:`RESUME_FIXED`
    keys (before anything in the run folder is touched); other differences are only logged."""
    changed = config_changes(run_dir, cfg)
    fixed = [k for k in changed if k.startswith(RESUME_FIXED)]
    if fixed:
        saved = _flatten(migrate_config(OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "config.yaml"),
                                                                resolve=False)))
        new = _flatten(OmegaConf.to_container(cfg, resolve=False))
        shown = "; ".join(f"{k}: run={saved.get(k, '<unset>')!r}, now={new.get(k, '<unset>')!r}" for k in fixed[:6])
        more = f" (+{len(fixed) - 6} more)" if len(fixed) > 6 else ""
        raise ConfigError(
            f"run_dir={run_dir}: the resumed config differs from the run's own (.hydra/config.yaml) in "
            f"{len(fixed)} key(s): {shown}{more}. A resume continues the run's config (its .hydra/overrides.yaml "
            "is applied automatically): drop these overrides, or start a new run without run_dir=. "
            "Nothing was written.")


def resolve_ckpt_path(cfg: DictConfig, output_dir: Path) -> str | None:
    """The checkpoint ``trainer.fit`` resumes from (``None``: start fresh); clear errors for bad paths."""
    ckpt = cfg.get("ckpt_path")
    run_dir = cfg.get("run_dir")
    if ckpt in (None, ""):
        if run_dir:
            raise ConfigError(f"run_dir={run_dir} is set but ckpt_path is null; use ckpt_path=last to continue it")
        return None
    if ckpt == "hpc":
        return "hpc"
    if ckpt == "last":
        folder = Path(run_dir).expanduser() if run_dir else output_dir
        path = find_checkpoint(folder, "last", required=False)
        if path is not None:
            return str(path)
        if run_dir:
            if not is_run_dir(folder):
                raise RunDirError(f"run_dir={folder} is not a train run folder (no .hydra/config.yaml); pass the "
                                  "folder of a train run (outputs/train/runs/<time>)")
            found = [p.name for p in checkpoints_of(folder)]
            raise RunDirError(f"run_dir={folder} has no checkpoints/last.ckpt to resume from (found: {found}); "
                                    "pass ckpt_path=<one of them> instead")
        log.info("ckpt_path=last: no %s yet, starting a fresh run", folder / CHECKPOINT_DIR / LAST)
        return None
    path = Path(str(ckpt)).expanduser()
    if not path.is_file():
        raise RunDirError(f"ckpt_path={ckpt} does not exist; pass a .ckpt file, or ckpt_path=last")
    return str(path)


def preflight_resume(out_dir: Path, cfg: DictConfig, ckpt: str | None) -> None:
    """The writability and free-space checks of :mod:`dbd_lightning.utils.preflight` for a resume from ``ckpt``
    that writes into ``out_dir`` (the run folder; ``hydra.run.dir``), run before Hydra starts: a resume that cannot
    go on stops before ``.hydra_resume/`` is written or the CSV history moved (the probe file of the
    writability check is removed again). The checkpoints kept are estimated from the size of ``ckpt``."""
    from ..utils.preflight import check_free_space, check_writable, required_free_bytes

    role = f"run folder {out_dir} (run_dir)"
    check_writable(out_dir, role=role, create=False)
    if (out_dir / CHECKPOINT_DIR).is_dir():
        check_writable(out_dir / CHECKPOINT_DIR, role=f"checkpoint folder of {role}", create=False)
    pre = cfg.get("preflight") or {}
    if ckpt in (None, "hpc") or not cfg.get("train", True) or pre.get("min_free_mb", None) == 0:
        return
    check_free_space(out_dir, required_free_bytes(cfg, Path(ckpt).stat().st_size), role=role)


def resume_command(run_dir: str | Path, ckpt: str = "last") -> str:
    """The command that continues the run in ``run_dir`` (shell-quoted): the run's own overrides come back
    from its ``.hydra/overrides.yaml`` by themselves."""
    return f"python -m dbd_lightning.train run_dir={shlex.quote(str(run_dir))} ckpt_path={shlex.quote(str(ckpt))}"


def _finished_epoch(ckpt: Path) -> int | None:
    try:
        import torch

        return int(torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except Exception:  # unreadable: the advice names the file without its epoch
        return None


def resume_advice(cfg: DictConfig) -> str:
    """What to run after the train job of ``cfg`` was interrupted: the resume command when the run saved
    a ``last.ckpt`` (with the epoch it holds), else that there is nothing to resume."""
    out = Path(str(cfg.paths.output_dir))
    if cfg.get("pipeline"):
        return f"a staged pipeline does not resume; its finished stages are in {out}; run the command again"
    if not cfg.get("train", True):
        return "nothing to resume (train=false)"
    dirpath = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    folder = Path(str(dirpath)) if dirpath else out / CHECKPOINT_DIR
    last = folder / LAST
    if not last.is_file():
        return f"no checkpoint was saved yet (the first epoch had not ended): nothing to resume in {out}"
    epoch = _finished_epoch(last)
    held = f"{last} holds the end of epoch {epoch}" if epoch is not None else f"{last} was saved"
    own = folder.resolve() == (out / CHECKPOINT_DIR).resolve()
    return f"{held}; continue with: {resume_command(out, 'last' if own else last)}"


def _flatten(node, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = node
    return out


def config_changes(run_dir: Path, cfg: DictConfig) -> list[str]:
    """Keys whose value differs from the original run's ``.hydra/config.yaml`` (expected ones left out)."""
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        return []
    old = _flatten(migrate_config(OmegaConf.to_container(OmegaConf.load(saved), resolve=False)))
    new = _flatten(OmegaConf.to_container(cfg, resolve=False))
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return [k for k in keys if not k.startswith(EXPECTED_CHANGES)]


def keep_csv_history(output_dir: Path) -> Path | None:
    """Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts; move it aside first."""
    csv = output_dir / "csv" / "metrics.csv"
    if not csv.is_file():
        return None
    n = 1 + max([int(m.group(1)) for p in csv.parent.glob("metrics.before_resume_*.csv")
                 if (m := re.search(r"_(\d+)\.csv$", p.name))] or [0])
    target = csv.with_name(f"metrics.before_resume_{n}.csv")
    csv.rename(target)
    return target
