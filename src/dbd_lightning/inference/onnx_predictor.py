"""A released model's shipped ONNX graph as a predictor, in onnxruntime and numpy, without torch.

``predict ckpt=zoo:<name>`` on a CPU machine spent most of its time importing torch (and, the
first time, exporting the graph) for a forward pass of ~60 ms. When the released model ships a
graph that belongs to its weights (:func:`~.onnx_graphs.valid_released_graph`: SHA-256 of the
weights and of the graph checked), :func:`released_graph_predictor` returns an
:class:`OnnxGraphPredictor`: the same steps as :class:`~.predictor.CheckpointPredictor` with
``backend=onnxruntime`` (cv2 bilinear resize of the uint8 image, normalisation in float32, the
graph, sigmoid, bilinear resize back, clip to [0, 1]; tiles and ``infer.*`` modes from
:class:`~.image_predictor.ImagePredictor`, set by the same :class:`~.settings.InferenceSettings`), computed in numpy. The maps equal the torch
predictor's within float32 rounding (a few 1e-6, ``tests/test_fast_start.py``).

It is used only when nothing else could have been chosen: ``backend=auto`` or ``onnxruntime``,
onnxruntime installed, and the CPU (``device=cpu``, or ``device=auto`` on a machine where no GPU
can exist, :func:`gpu_ruled_out`). Otherwise (a GPU, ``backend=torch`` / ``onnxruntime_int8``, a
missing or altered graph) :func:`released_graph_predictor` returns ``None`` and the caller builds
the torch predictor as before.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from omegaconf import DictConfig, OmegaConf

from .image_predictor import ImagePredictor, run_input
from .onnx_graphs import in_package, valid_released_graph
from .settings import InferenceSettings, as_settings

log = logging.getLogger(__name__)

#: device nodes one of which exists wherever torch can use a GPU on Linux (NVIDIA, ROCm, WSL)
GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def gpu_ruled_out() -> bool:
    """True when ``device=auto`` surely means the CPU here, decided without importing torch.

    torch already imported: it is asked. macOS: torch has no CUDA there. Linux: no GPU device
    node exists. Anywhere else (or a node exists): ``False``, and torch decides as before.
    """
    if "torch" in sys.modules:
        return not sys.modules["torch"].cuda.is_available()
    if sys.platform == "darwin":
        return True
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in GPU_NODES)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32, copy=False)


class OnnxGraphPredictor(ImagePredictor):
    """An ONNX graph (normalised image -> in-focus logits) as a :class:`~.predictor.Predictor`, on the CPU.

    Args:
        graph: the ``.onnx`` file (input ``image`` ``(B, 3, H, W)``, output logits ``(B, 1, H, W)``).
        mean / std: input normalisation (of the run's eval transform).
        threads: onnxruntime intra-op threads (default: ``OMP_NUM_THREADS``, else onnxruntime's own,
            one per physical core, as torch's default).
        settings / size_multiple: :class:`~.image_predictor.ImagePredictor`'s (image size, ``infer.*``, ``tile.*``).
    """

    backend_name = "onnxruntime"

    def __init__(self, graph: str | Path, mean: Sequence[float], std: Sequence[float], threads: int | None = None,
                 settings: InferenceSettings | Mapping | None = None, size_multiple: int = 32) -> None:
        super().__init__(settings, size_multiple=size_multiple)
        import onnxruntime as ort

        options = ort.SessionOptions()
        threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        options.intra_op_num_threads = max(0, int(threads))
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.graph = Path(graph)
        self.session = ort.InferenceSession(str(self.graph), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        # the torch predictor's arithmetic, in float32: (x - mean * 255) / (std * 255)
        self.mean255 = np.asarray(mean, np.float32).reshape(1, 3, 1, 1) * np.float32(255.0)
        self.std255 = np.asarray(std, np.float32).reshape(1, 3, 1, 1) * np.float32(255.0)

    def _probabilities(self, crops: list[np.ndarray], input_size: tuple[int, int] | None = None) -> list[np.ndarray]:
        sizes, batch = self._resized_crops(crops, input_size)
        x = np.stack(batch).transpose(0, 3, 1, 2).astype(np.float32)
        x = (x - self.mean255) / self.std255
        probs = _sigmoid(self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0])
        out = []
        for p, (h, w) in zip(probs, sizes, strict=True):
            p = p[0]
            if p.shape != (h, w):  # bilinear, half-pixel centres: torch's interpolate(align_corners=False)
                p = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
            out.append(np.clip(p, 0.0, 1.0).astype(np.float32, copy=False))
        return out


def _onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def released_graph_predictor(run, settings: InferenceSettings | Mapping | None = None, backend: str = "torch",
                             device: str = "auto", amp: bool = False, int8=None, mean: Sequence[float] | None = None,
                             std: Sequence[float] | None = None, size_multiple: int = 32,
                             **others) -> OnnxGraphPredictor | None:
    """An :class:`OnnxGraphPredictor` of a released model's shipped graph, or ``None`` (module docstring).

    ``run``: the resolved checkpoint (:class:`~dbd_lightning.runs.run.RunCheckpoint`); the other
    arguments are :class:`~.predictor.CheckpointPredictor.from_run`'s (any argument the graph
    predictor has no use for, e.g. ``checkpoint``, leaves the choice to the torch predictor: ``None``).
    """
    settings = as_settings(settings)  # a bad setting is an error here too, not a silent fall-back
    if str(backend) not in ("auto", "onnxruntime") or not in_package(run.ckpt):
        return None
    if str(device) != "cpu" and not (str(device) == "auto" and gpu_ruled_out()):
        return None
    if not _onnxruntime_installed() or others:
        return None
    graph = valid_released_graph(run.ckpt)
    if graph is None:
        return None
    cfg = run.load_config()
    if not isinstance(OmegaConf.select(cfg, "model.net", default=None), DictConfig):
        return None  # not a network: the torch path says why
    settings, mean, std = run_input(cfg, settings, mean, std)
    log.info("predictor: the released ONNX graph %s in onnxruntime (max |diff| to torch when built: %s)",
             graph[0], graph[1].get("max_abs_diff"))
    return OnnxGraphPredictor(graph[0], mean, std, settings=settings, size_multiple=size_multiple)
