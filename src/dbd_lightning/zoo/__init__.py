"""Released models: ``python -m dbd_lightning.zoo`` lists them, ``ckpt=zoo:<name>`` uses them."""

from .registry import RECOMMENDED, WEIGHTS_DIR, ZOO_PREFIX, ZooCheckpoint, release, resolve_zoo, zoo_names

__all__ = ["RECOMMENDED", "WEIGHTS_DIR", "ZOO_PREFIX", "ZooCheckpoint", "release", "resolve_zoo", "zoo_names"]
