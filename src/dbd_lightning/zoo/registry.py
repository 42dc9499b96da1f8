"""Released models shipped inside the package: ``ckpt=zoo:<name>`` in predict, eval and export.

A released model is two files in :data:`WEIGHTS_DIR`:

* ``<name>.safetensors``: the network's weights (float16, tensors only, so loading
  executes nothing) with the metadata key ``dbd_lightning`` holding JSON:
  ``{"config": {"model": {"net": ...}, "data": {"image_size": ..., ...}}, ...}``;
  ``config`` is the part of the training run's config that rebuilds the network and its
  input protocol, so the model needs nothing else on disk.
* ``<name>.md``: its model card (what, how trained, the exact command, numbers, limits).

:func:`release` writes both from a trained run's checkpoint, each atomically (temporary file, fsync,
rename: an interrupted release leaves the previous files or none). It replaces a name's files only
when they are an earlier release (the ``.safetensors`` carries the ``dbd_lightning`` metadata); any
other file at those paths stops it before it writes (:class:`ReleaseOutputError`, exit 2 in the CLIs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..runs.run import CheckpointSpecError, RunCheckpoint
from ..utils.errors import UserError

__all__ = ["WEIGHTS_DIR", "RECOMMENDED", "ZooCheckpoint", "zoo_names", "resolve_zoo", "release", "training_data",
           "ZOO_PREFIX", "ReleaseOutputError", "released_file"]

ZOO_PREFIX = "zoo:"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: the recommended model first; other released names follow alphabetically
RECOMMENDED: tuple[str, ...] = ("dffnet_lite0_cuhk", "dffnet_lite0_synth")
METADATA_KEY = "dbd_lightning"


def zoo_names(folder: Path | None = None) -> list[str]:
    """Released model names, the recommended one first."""
    folder = WEIGHTS_DIR if folder is None else folder
    found = sorted(p.stem for p in folder.glob("*.safetensors") if p.with_suffix(".md").is_file())
    return [n for n in RECOMMENDED if n in found] + [n for n in found if n not in RECOMMENDED]


@dataclass(frozen=True)
class ZooCheckpoint(RunCheckpoint):
    """A released model, used wherever a trained run's checkpoint is (``run_dir`` = the zoo folder)."""

    name: str = ""
    in_zoo: bool = True  # False: a released file elsewhere on disk (:func:`released_file`)

    @property
    def config_file(self) -> Path:
        return self.ckpt.with_suffix(".md")

    def metadata(self) -> dict:
        from safetensors import safe_open

        try:
            with safe_open(str(self.ckpt), framework="numpy") as f:  # metadata only: "pt" would import torch
                meta = f.metadata() or {}
            return json.loads(meta[METADATA_KEY])
        except Exception as exc:  # corrupt file / no metadata: a released file is never trusted blindly
            raise CheckpointSpecError(
                f"released model {self.name!r} ({self.ckpt}) is unreadable or has no {METADATA_KEY!r} metadata "
                f"({type(exc).__name__}: {exc}); reinstall the package"
            ) from None

    def load_config(self) -> DictConfig:
        return OmegaConf.create(self.metadata()["config"])

    @property
    def label(self) -> str:
        return f"zoo:{self.name}" if self.in_zoo else self.ckpt.name


TRAINING_DATA_PREFIX = "Training data:"


def training_data(name: str, folder: Path | None = None) -> str:
    """What a released model was trained on: its card's ``Training data: ...`` line (one per card)."""
    card = (WEIGHTS_DIR if folder is None else folder) / f"{name}.md"
    for line in card.read_text().splitlines():
        if line.strip().startswith(TRAINING_DATA_PREFIX):
            return line.strip()[len(TRAINING_DATA_PREFIX):].strip()
    return "not stated (the card has no 'Training data:' line)"


def resolve_zoo(spec: str, folder: Path | None = None) -> ZooCheckpoint:
    """``zoo:<name>`` -> :class:`ZooCheckpoint`; an unknown name lists the released ones."""
    name = spec[len(ZOO_PREFIX):] if spec.startswith(ZOO_PREFIX) else spec
    folder = WEIGHTS_DIR if folder is None else folder
    names = zoo_names(folder)
    if name not in names:
        listed = ", ".join(names) if names else "(none installed)"
        raise CheckpointSpecError(f"no released model {name!r}; released models: {listed}")
    return ZooCheckpoint(folder, folder / f"{name}.safetensors", name=name)


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


def released_file(path: Path) -> ZooCheckpoint:
    """A released model's ``.safetensors`` file outside the zoo folder (copied, downloaded, re-released).

    The file alone rebuilds the network (its metadata holds the config); a ``.safetensors`` file
    without that metadata is refused with one line.
    """
    entry = ZooCheckpoint(path.parent, path, name=path.stem, in_zoo=False)
    entry.metadata()  # not a released model's file: CheckpointSpecError now, not a KeyError later
    return entry


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
    folder = WEIGHTS_DIR if folder is None else folder
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
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net_state.items()}
    meta = {"config": config, "source_checkpoint": run.ckpt.name, **(extra or {})}
    out = folder / f"{name}.safetensors"
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(meta)})
    write_text(folder / f"{name}.md", card)
    return out
