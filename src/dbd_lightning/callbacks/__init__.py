"""Lightning callbacks of the suite: checkpointing, training guards and resume support; the W&B logger and
eval report (:mod:`.wandb_tools`, imported only where W&B is used)."""

from .checkpoint import ModelCheckpoint
from .guards import NonFiniteGuard, NonFiniteLossError
from .resume import RNGStateCheckpoint

__all__ = ["ModelCheckpoint", "NonFiniteGuard", "NonFiniteLossError", "RNGStateCheckpoint"]
