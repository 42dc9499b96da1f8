"""Lightning callbacks of the suite: checkpointing, training guards and resume support."""

from .checkpoint import ModelCheckpoint
from .guards import NonFiniteGuard, NonFiniteLossError
from .resume import RNGStateCheckpoint

__all__ = ["ModelCheckpoint", "NonFiniteGuard", "NonFiniteLossError", "RNGStateCheckpoint"]
