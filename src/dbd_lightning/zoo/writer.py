"""Writing a released model: :func:`release` turns a trained run's checkpoint into ``<name>.safetensors``
(float16 weights + the config that rebuilds the network) and ``<name>.md`` (its card) in
:data:`~dbd_lightning.runs.released.WEIGHTS_DIR`; reading them back is :mod:`dbd_lightning.runs.released`.

Each file is written atomically (temporary file, fsync, rename: an interrupted release leaves the previous
files or none). A name's files are replaced only when they are an earlier release (the ``.safetensors``
carries the ``dbd_lightning`` metadata); any other file at those paths stops it before it writes
(:class:`ReleaseOutputError`, exit 2 in the CLIs).
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from ..runs import (
    released,  # released.WEIGHTS_DIR is read when release() runs (a test may point it elsewhere)
)
from ..runs.released import METADATA_KEY, TRAINING_DATA_PREFIX
from ..runs.run import RunCheckpoint
from ..utils.errors import UserError

__all__ = ["NonFiniteWeightsError", "ReleaseOutputError", "non_finite_tensors", "refuse_foreign_release", "release"]


class NonFiniteWeightsError(UserError, ValueError):
    """A release would store weights that are not finite in float16 (a diverged run or adaptation)."""


class ReleaseOutputError(UserError, FileExistsError):
    """A release would overwrite files that are not an earlier release."""


def _released_by_us(weights: Path) -> bool:
    """``weights`` is a safetensors file with this suite's release metadata (read from its header only)."""
    if weights.is_symlink() or not weights.is_file():
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as fh:
            return METADATA_KEY in (fh.metadata() or {})
    except Exception:  # noqa: BLE001 -- unreadable or foreign: not a release
        return False


def refuse_foreign_release(folder: Path, name: str) -> None:
    """Stop when ``<name>.safetensors`` / ``<name>.md`` exist and are not an earlier release of ``name``."""
    weights, card = folder / f"{name}.safetensors", folder / f"{name}.md"
    ours = _released_by_us(weights)
    bad = [p for p in (weights, card) if (p.exists() or p.is_symlink()) and not (ours and p.is_file()
                                                                                  and not p.is_symlink())]
    if bad:
        raise ReleaseOutputError(
            f"{', '.join(map(str, bad))} exist(s) and are not an earlier release of {name!r} (no {METADATA_KEY!r} "
            "metadata in the .safetensors): a release never overwrites files it did not write; choose another "
            "name, or move those files away yourself")


def non_finite_tensors(state: dict) -> list[str]:
    """The names of the floating-point tensors of ``state`` that are not finite once stored in float16 (a NaN,
    an infinity, or a value beyond float16's 65504, as a diverged adaptation's running variance can be)."""
    import torch

    return [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()
            and not bool(torch.isfinite(v.detach().to(torch.float16)).all())]


def release(run: RunCheckpoint, name: str, card: str, folder: Path | None = None, extra: dict | None = None,
            state: dict | None = None) -> Path:
    """Write ``<name>.safetensors`` (float16 weights + rebuild config) and ``<name>.md`` from a trained run.

    ``state``: the network's weights to release instead of the checkpoint's (e.g. after
    :func:`~dbd_lightning.models.components.batchnorm_stats.recompute_batchnorm_statistics`)."""
    from safetensors.torch import save_file

    from ..utils.atomic import atomic_path, write_text
    from ..utils.checkpoint import load_state_dict

    if not any(line.strip().startswith(TRAINING_DATA_PREFIX) for line in card.splitlines()):
        raise ValueError(f"a model card must state its training data on a line starting with {TRAINING_DATA_PREFIX!r}")
    folder = released.WEIGHTS_DIR if folder is None else folder
    refuse_foreign_release(folder, name)
    cfg = run.load_config()
    net_cfg = OmegaConf.to_container(cfg.model.net, resolve=True)
    net_cfg["pretrained"] = False  # the released weights replace any initialisation
    net_cfg["weights_file"] = None
    net_cfg.pop("init_ckpt", None)
    tf = OmegaConf.to_container(OmegaConf.select(cfg, "data.datamodule.eval_transform", default={}) or {}, resolve=True)
    config = {"model": {"net": net_cfg},
              "data": {"image_size": list(OmegaConf.select(cfg, "data.image_size", default=[320, 320])),
                       "datamodule": {"eval_transform": tf}},
              "metrics": OmegaConf.to_container(cfg.metrics, resolve=True) if "metrics" in cfg else None}
    state = load_state_dict(run.ckpt) if state is None else state
    net_state = {k[4:]: v for k, v in state.items() if k.startswith("net.")} or state
    broken = non_finite_tensors(net_state)
    if broken:  # a release that loads but predicts garbage is the worst outcome: refuse it
        raise NonFiniteWeightsError(f"release {name!r}: {len(broken)} weight tensors are not finite in float16 (e.g. "
                                    f"{broken[0]}); the run diverged or its values exceed float16's range; nothing was "
                                    "written")
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net_state.items()}
    meta = {"config": config, "source_checkpoint": run.ckpt.name, **(extra or {})}
    out = folder / f"{name}.safetensors"
    folder.mkdir(parents=True, exist_ok=True)  # after every check: a refused release leaves no folder behind
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    write_text(folder / f"{name}.md", card)
    return out
