"""Lightning callbacks of the suite: training guards and resume support."""

from .guards import NonFiniteGuard, NonFiniteLossError
from .resume import RNGStateCheckpoint

__all__ = ["NonFiniteGuard", "NonFiniteLossError", "RNGStateCheckpoint"]
