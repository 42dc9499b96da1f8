"""Checks before training starts: every output folder is writable and has room for the checkpoints.

A run that dies after hours because its checkpoint folder is read-only or the
disk is full wastes the hours; these checks fail in the first second instead,
naming the folder, the config key that chose it and the fix.

* :func:`check_writable` creates the folder, writes, fsyncs and deletes a small
  probe file (``os.access`` is not enough: it ignores read-only mounts for root,
  quotas and full disks).
* :func:`check_free_space` compares ``shutil.disk_usage(folder).free`` with an
  estimate of the checkpoints the run keeps (:func:`required_free_bytes`).
* A resume runs both checks on its run folder before Hydra writes ``.hydra_resume/`` or the run
  moves any file (:func:`dbd_lightning.runs.resume.preflight_resume`): a resume stopped here
  leaves the run folder as it was.
* :class:`OutputDirCheck` is a Hydra callback (``conf/hydra/default.yaml``) that runs
  the writability check on the run / sweep folder's nearest existing parent before
  Hydra creates it, so even Hydra's own files never hit an unwritable folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from .errors import UserError

PROBE_BYTES = 64 * 1024
MIB = 1024 * 1024


class OutputDirError(UserError, RuntimeError):
    """An output folder cannot be written or is (nearly) full."""


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: str | Path, role: str = "output folder", create: bool = True) -> Path:
    """Make sure ``folder`` can be created and written; raise :class:`OutputDirError` otherwise."""
    folder = Path(folder).expanduser()
    target = folder if create else _nearest_existing(folder)
    hint = ("choose another place (hydra.run.dir=..., DBD_LOG_DIR=... or paths.log_dir=...) "
            "or fix the folder's permissions / free some space")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        elif not target.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(target))
        fd, probe = tempfile.mkstemp(prefix=".dbd-write-probe-", dir=target)
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as exc:
        reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
                  errno.EROFS: "the filesystem is read-only", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied", errno.ENOTDIR: "a path component is a file, not a folder",
                  errno.EEXIST: "a path component is a file, not a folder"}.get(exc.errno, exc.strerror or str(exc))
        raise OutputDirError(f"cannot write the {role} {folder}: {reason} ({exc}); {hint}") from None
    return folder


def checkpoint_bytes(module: Any, optimizer_slots: int = 2) -> int:
    """Rough size of one training checkpoint: the state dict plus ``optimizer_slots`` copies of the
    trainable parameters (Adam keeps two moments)."""
    state = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    trainable = sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)
    return int(state + optimizer_slots * trainable)


def check_free_space(folder: str | Path, need_bytes: int, role: str = "checkpoint folder") -> None:
    """Raise :class:`OutputDirError` when ``folder`` has less than ``need_bytes`` free."""
    folder = _nearest_existing(Path(folder))
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise OutputDirError(
            f"not enough free disk space for the {role} {folder}: {free / MIB:.0f} MiB free, the run needs about "
            f"{need_bytes / MIB:.0f} MiB (checkpoints it keeps + a temporary copy while saving). Free some space, "
            "write elsewhere (hydra.run.dir=... / DBD_LOG_DIR=...), lower callbacks.model_checkpoint.save_top_k "
            "or set preflight.min_free_mb=0 to skip this check."
        )


class OutputDirCheck(Callback):
    """Hydra callback: check the run (or sweep) folder's nearest existing parent before Hydra writes there."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def _check(self, config: Any, key: str) -> None:
        if not self.enabled:
            return
        from omegaconf import OmegaConf

        from .errors import handle_user_errors

        folder = OmegaConf.select(config, key, throw_on_resolution_failure=False)
        if folder:
            with handle_user_errors(log_file=False):  # error: ..., exit 2 (not a Hydra warning + traceback)
                check_writable(folder, role=f"output folder ({key})", create=False)

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")


def output_folders(cfg: Any) -> list[tuple[str, str]]:
    """``(folder, config key)`` of every place a training run writes: run folder, checkpoint and logger folders."""
    out = [(str(cfg.paths.output_dir), "paths.output_dir")]
    for group in ("callbacks", "logger"):
        for name, node in (cfg.get(group) or {}).items():
            for key in ("dirpath", "save_dir"):
                value = node.get(key) if hasattr(node, "get") else None
                if value:
                    out.append((str(value), f"{group}.{name}.{key}"))
    return list(dict.fromkeys(out))


def required_free_bytes(cfg: Any, checkpoint_size: int) -> int:
    """Disk the run needs: ``preflight.min_free_mb`` or (checkpoints kept + 1 being written) x ``checkpoint_size``
    (:func:`checkpoint_bytes` of the module, or the size of the checkpoint a resume starts from)."""
    pre = cfg.get("preflight") or {}
    if pre.get("min_free_mb") is not None:
        return int(float(pre["min_free_mb"]) * MIB)
    keep = 0
    for node in (cfg.get("callbacks") or {}).values():
        if hasattr(node, "get") and str(node.get("_target_", "")).endswith("ModelCheckpoint"):
            top_k = int(node.get("save_top_k", 1))
            keep += (top_k if top_k >= 0 else 1) + (1 if node.get("save_last") else 0)
    return (keep + 1) * int(checkpoint_size) + 16 * MIB  # + logs
