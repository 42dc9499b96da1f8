"""Released models: ``python -m dbd_lightning.zoo`` lists them, ``ckpt=zoo:<name>`` uses them.

The weights and cards are package data here (``weights/``); reading them as checkpoints is
:mod:`dbd_lightning.runs.released` (the resolver uses it), writing them :mod:`.writer`, their ONNX graphs
:mod:`.graphs`."""

from ..runs.released import RECOMMENDED, WEIGHTS_DIR, ZOO_PREFIX, ZooCheckpoint, resolve_zoo, zoo_names
from .writer import release

__all__ = ["RECOMMENDED", "WEIGHTS_DIR", "ZOO_PREFIX", "ZooCheckpoint", "release", "resolve_zoo", "zoo_names"]
