"""Inference shared by predict and eval: backends (``backend=torch|onnxruntime|auto``), tiling with seamless
blending and scale-aware modes (``infer.mode=resize|scale|tile``)."""

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
