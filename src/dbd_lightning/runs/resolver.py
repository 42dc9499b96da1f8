"""The one checkpoint resolver: pipelines, eval, predict, export and resume find checkpoints here.

A train run writes ``<run>/checkpoints/`` with ModelCheckpoint (``conf/callbacks/default.yaml``):
``epoch_NNN.ckpt`` (the ``save_top_k`` best by ``data.monitor``) and ``last.ckpt`` (the end of the
latest epoch, which is what a resume continues).

``best`` means one thing everywhere: **the checkpoint ModelCheckpoint recorded as best**, i.e. the
``best_model_path`` stored in ``last.ckpt``'s callback state (read with ``weights_only=True``), looked
up by file name in the run's own ``checkpoints/`` (so a moved or copied run folder still resolves).
Never the newest file. Fallback, in this order, when that record cannot be used (no ``last.ckpt``,
an unreadable one, no ModelCheckpoint state, or the recorded file is gone):

1. the only ``epoch_*``-style checkpoint (not ``last*``) in the folder: with ``save_top_k=1``
   ModelCheckpoint keeps exactly one, the best;
2. several of them: an error listing them (pick one with ``which=<file name>``): guessing could
   pick a worse one;
3. none of them: ``last.ckpt`` (logged), the only weights the run saved; with ``required=False``
   (pipelines) ``None`` when the run saved no checkpoint at all (``fast_dev_run``).

``last`` is ``checkpoints/last.ckpt``; any other ``which`` is a file name in ``checkpoints/`` or an
absolute path. :func:`resolve_checkpoint` turns a ``ckpt=`` value (run folder, ``.ckpt`` file,
``wandb:<run id>``, ``zoo:<name>``, a released ``.safetensors`` file) into a :class:`~dbd_lightning.runs.run.RunCheckpoint`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .released import ZOO_PREFIX, released_file, resolve_zoo
from .run import CheckpointSpecError, RunCheckpoint, is_run_dir

__all__ = ["CHECKPOINT_DIR", "LAST", "checkpoints_of", "find_checkpoint", "find_wandb_run", "recorded_best",
           "resolve_checkpoint"]

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"


def checkpoints_of(run_dir: str | Path) -> list[Path]:
    """Every ``.ckpt`` file in ``<run_dir>/checkpoints`` (sorted by name; empty when there is no folder)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return sorted(folder.glob("*.ckpt")) if folder.is_dir() else []


def recorded_best(last: str | Path) -> str | None:
    """File name of the ``best_model_path`` ModelCheckpoint stored in ``last`` (``None``: no usable record)."""
    last = Path(last)
    if not last.is_file():
        return None
    try:
        import torch

        state = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # unreadable metadata: the caller falls back to the file listing
        return None
    for key, value in (state.get("callbacks") or {}).items() if isinstance(state, dict) else ():
        if "ModelCheckpoint" in str(key) and isinstance(value, dict) and value.get("best_model_path"):
            return Path(str(value["best_model_path"])).name
    return None


def find_checkpoint(run_dir: str | Path, which: str = "best", required: bool = True) -> Path | None:
    """``best`` (see the module docstring), ``last`` or a file name in ``<run_dir>/checkpoints``.

    ``required=False``: ``None`` instead of an error when the checkpoint does not exist (``best``: the
    run saved no checkpoint at all; ``last``: no ``last.ckpt`` yet). Several checkpoints with no
    recorded best are an error either way.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    if which == "best":
        path = _best(folder, required)
        if path is None:
            return None
    elif which == "last":
        path = folder / LAST
    else:
        path = Path(which) if Path(which).is_absolute() else folder / which
    if not path.is_file():
        if not required:
            return None
        found = sorted(p.name for p in folder.glob("*.ckpt")) if folder.is_dir() else "no checkpoints/ folder"
        raise CheckpointSpecError(f"checkpoint not found: {path} (which={which} picks the checkpoint of {run_dir}: "
                                  f"best, last or a file name in {folder}; found: {found})")
    return path


def _best(folder: Path, required: bool) -> Path | None:
    recorded = recorded_best(folder / LAST)
    if recorded and (folder / recorded).is_file():
        return folder / recorded
    candidates = sorted(p for p in folder.glob("*.ckpt") if not p.name.startswith("last")) if folder.is_dir() else []
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise CheckpointSpecError(
            f"{folder} holds {len(candidates)} checkpoints and last.ckpt records no best one: "
            f"{[p.name for p in candidates]}; pick one with which=<file name>"
        )
    if (folder / LAST).is_file():
        log.info("%s holds no best checkpoint (epoch_*.ckpt): using %s", folder, LAST)
        return folder / LAST
    if not required:
        return None
    found = sorted(os.listdir(folder)) if folder.is_dir() else "no checkpoints/ folder"
    raise CheckpointSpecError(f"no best checkpoint in {folder} (found: {found})")


def find_wandb_run(run_id: str, search_root: str | Path) -> Path:
    """The local train run folder whose ``wandb/`` holds the (offline or synced) run ``run_id``.

    Offline first: W&B runs are resolved on disk (``<run>/wandb/*run-<id>``), never over the network.
    """
    root = Path(search_root)
    hits = sorted({p.parent.parent for p in root.glob(f"**/wandb/*run-*-{run_id}") if p.is_dir()})
    if not hits:
        raise CheckpointSpecError(f"W&B run {run_id!r} not found under {root} (looked for **/wandb/*run-*-{run_id})")
    if len(hits) > 1:
        raise CheckpointSpecError(f"W&B run id {run_id!r} is ambiguous under {root}: {[str(h) for h in hits]}")
    return hits[0]


def resolve_checkpoint(spec: str | Path, which: str = "best", search_root: str | Path = "outputs") -> RunCheckpoint:
    """Turn a ``ckpt=`` value into a :class:`RunCheckpoint`.

    ``spec``: a train run folder (``which`` = ``best``/``last``/file name picks the
    checkpoint), a ``.ckpt`` file inside ``<run>/checkpoints/``, or
    ``wandb:<run id>`` (a W&B run logged by a local train run under ``search_root``), or
    ``zoo:<name>`` (a released model, :mod:`dbd_lightning.zoo`), or a released model's
    ``.safetensors`` file anywhere on disk (its metadata rebuilds the network).
    """
    text = str(spec)
    if text.startswith(ZOO_PREFIX):  # a released model shipped in the package (runs.released, zoo/weights)
        return resolve_zoo(text)
    if text.startswith("wandb:"):
        run_dir = find_wandb_run(text.split(":", 1)[1].split("/")[-1], search_root)
        return RunCheckpoint(run_dir, find_checkpoint(run_dir, which))
    path = Path(text).expanduser()
    if path.is_dir():
        if not is_run_dir(path):
            raise CheckpointSpecError(f"{path} is not a train run folder: {path / '.hydra' / 'config.yaml'} is missing")
        return RunCheckpoint(path, find_checkpoint(path, which))
    if path.is_file() and path.suffix == ".safetensors":  # a released model's file, copied anywhere
        return released_file(path)
    if path.is_file():
        for run_dir in (path.parent.parent, path.parent):
            if is_run_dir(run_dir):
                return RunCheckpoint(run_dir, path)
        raise CheckpointSpecError(
            f"cannot find the config of checkpoint {path}: expected <run>/.hydra/config.yaml next to "
            f"<run>/checkpoints/{path.name}; pass the run folder instead"
        )
    raise CheckpointSpecError(f"checkpoint or run folder not found: {path} (ckpt takes a train run folder, a .ckpt "
                              "file, a released .safetensors file, wandb:<run id> or zoo:<name>; "
                              "python -m dbd_lightning.zoo lists the released models)")
