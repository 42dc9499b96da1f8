"""Inference shared by predict and eval: backends (``backend=torch|onnxruntime|auto``), tiling with seamless
blending and scale-aware modes (``infer.mode=resize|scale|tile``), all set by one
:class:`~.settings.InferenceSettings` (``conf/inference/``).

The names below load :mod:`.backends` (and torch) on first use, not on ``import``: a released model's
shipped ONNX graph predicts without torch (:mod:`.onnx_predictor`).
"""

from __future__ import annotations

import importlib

__all__ = ["BACKENDS", "BackendUnavailableError", "OnnxRuntimeBackend", "TorchBackend", "make_backend",
           "resolve_backend"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(".backends", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
