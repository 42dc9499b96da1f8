"""dbd_lightning: defocus blur detection and estimation with Lightning + Hydra.

``from dbd_lightning import load_predictor`` is the one-line Python API (:mod:`dbd_lightning.api`);
it is imported on first use, so ``import dbd_lightning`` stays cheap (no torch, no Lightning).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["FocusPredictor", "load_predictor"]

_LAZY = {"load_predictor": "api", "FocusPredictor": "api"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
