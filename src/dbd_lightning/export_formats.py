"""The torch half of ``python -m dbd_lightning.export``: the exported module, the exporters, their runners.

Kept apart from :mod:`dbd_lightning.export` so that ``export --help`` loads no torch; the names are
also reachable as ``dbd_lightning.export.<name>``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .utils.atomic import atomic_path, write_atomic

log = logging.getLogger("dbd_lightning.export")


class ExportWrapper(nn.Module):
    """``rgb in [0, 1] -> in-focus probability`` (or logits) of a DBD network, one tensor in, one out."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], output: str = "probability"):
        super().__init__()
        if output not in ("probability", "logits"):
            raise ValueError(f"output must be 'probability' or 'logits', got {output!r}")
        self.net = net.eval()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1))
        self.probability = output == "probability"

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        logits = self.net((rgb - self.mean) / self.std)["logits"]
        return torch.sigmoid(logits) if self.probability else logits


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool = True, opset: int = 17,
                dynamo: bool = False) -> Path:
    """``model`` as one ONNX file at ``path`` (written atomically)."""
    with atomic_path(path) as tmp:
        _export_onnx(model, example, tmp, dynamic, opset, dynamo)
    return path


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path, dynamic: bool, opset: int,
                 dynamo: bool) -> None:
    names = dict(input_names=["rgb"], output_names=["focus"])
    if dynamo:
        try:
            import onnxscript  # noqa: F401
        except ImportError as exc:
            raise ImportError("dynamo=true needs onnxscript: pip install -e '.[export]'") from exc
        shapes = None
        if dynamic:
            b, h, w = torch.export.Dim("batch"), torch.export.Dim("height", min=32), torch.export.Dim("width", min=32)
            shapes = {"rgb": {0: b, 2: h, 3: w}}
        torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=shapes, opset_version=opset,
                          external_data=False, **names)  # one file: renamed into place as a whole
    else:
        axes = {"rgb": {0: "batch", 2: "height", 3: "width"}, "focus": {0: "batch", 2: "height", 3: "width"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation / tracer notes
            torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset,
                              dynamic_axes=axes if dynamic else None, **names)


def export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """``torch.jit.trace`` (timm encoders are traceable, not scriptable), written atomically."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        write_atomic(path, lambda f: torch.jit.save(traced, f))
    return path


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_torchscript(path: Path, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()
