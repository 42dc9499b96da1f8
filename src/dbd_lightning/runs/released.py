"""A released model as a checkpoint: ``ckpt=zoo:<name>`` (shipped in the package, ``zoo/weights/``) or a
released ``.safetensors`` file anywhere on disk, for the one checkpoint resolver (:mod:`.resolver`).

A released model is two files in :data:`WEIGHTS_DIR`:

* ``<name>.safetensors``: the network's weights (float16, tensors only, so loading
  executes nothing) with the metadata key ``dbd_lightning`` holding JSON:
  ``{"config": {"model": {"net": ...}, "data": {"image_size": ..., ...}}, ...}``;
  ``config`` is the part of the training run's config that rebuilds the network and its
  input protocol, so the model needs nothing else on disk.
* ``<name>.md``: its model card (what, how trained, the exact command, numbers, limits).

Reading them is here, beside :class:`~.run.RunCheckpoint` (a :class:`ZooCheckpoint` is used wherever a
run's checkpoint is); writing them (:func:`dbd_lightning.zoo.writer.release`), their ONNX graphs and
``python -m dbd_lightning.zoo`` are in :mod:`dbd_lightning.zoo`, which builds on this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .run import CheckpointSpecError, RunCheckpoint

__all__ = ["WEIGHTS_DIR", "RECOMMENDED", "ZooCheckpoint", "zoo_names", "resolve_zoo", "training_data",
           "ZOO_PREFIX", "METADATA_KEY", "released_file"]

ZOO_PREFIX = "zoo:"
#: the released models shipped with the package (package data of :mod:`dbd_lightning.zoo`)
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "zoo" / "weights"
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
                f"({type(exc).__name__}: {exc}); "
                + ("reinstall the package" if self.in_zoo else
                   "give a .safetensors file written by dbd_lightning (zoo release or adapt) whole, or a run "
                   "folder / .ckpt file")
            ) from None

    def load_config(self) -> DictConfig:
        return OmegaConf.create(self.metadata()["config"])

    @property
    def label(self) -> str:
        return f"zoo:{self.name}" if self.in_zoo else self.ckpt.name


TRAINING_DATA_PREFIX = "Training data:"


def training_data(name: str, folder: Path | None = None) -> str:
    """What a released model was trained on: its card's ``Training data: ...`` line (one per card); a released
    file elsewhere on disk may have lost its card, which is said instead."""
    card = (WEIGHTS_DIR if folder is None else folder) / f"{name}.md"
    if not card.is_file():
        return f"not stated (no model card {card} beside the weights)"
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


def released_file(path: Path) -> ZooCheckpoint:
    """A released model's ``.safetensors`` file outside the zoo folder (copied, downloaded, re-released).

    The file alone rebuilds the network (its metadata holds the config); a ``.safetensors`` file
    without that metadata is refused with one line.
    """
    entry = ZooCheckpoint(path.parent, path, name=path.stem, in_zoo=False)
    entry.metadata()  # not a released model's file: CheckpointSpecError now, not a KeyError later
    return entry
