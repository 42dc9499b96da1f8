"""Inference backends of :class:`~dbd_lightning.predictors.CheckpointPredictor` (``backend=torch|onnxruntime|auto``)."""

from .backends import (
    BACKENDS,
    BackendUnavailableError,
    OnnxRuntimeBackend,
    TorchBackend,
    make_backend,
    resolve_backend,
)

__all__ = ["BACKENDS", "BackendUnavailableError", "OnnxRuntimeBackend", "TorchBackend", "make_backend",
           "resolve_backend"]
