"""Benchmark cases of the prediction path (registered in :data:`.runner.CASES`).

* :func:`bench_predict_tiling`: one EBD-size image (default 1024 x 1600) through
  :class:`~dbd_lightning.inference.predictor.CheckpointPredictor`, whole-image mode (resize
  to the network input) versus tiled mode (native-resolution tiles, overlap
  blending): ms per image and number of tiles.
* :func:`bench_onnx_runtime`: the exported graph in onnxruntime versus PyTorch,
  same input (batch 1), ms per image and the max difference.

Random weights (no download); timings are wall-clock medians (:func:`~dbd_lightning.utils.timer.measure`) on this machine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..inference.predictor import CheckpointPredictor
from ..inference.settings import InferenceSettings, TileSettings, overlap_pixels
from ..inference.tiling import tile_starts
from ..utils.timer import measure


def _median_ms(fn, repeats: int) -> float:
    return measure(fn, repeats, warmup=1).median * 1e3


def _net(encoder: str):
    from ..models.dffnet import DFFNet

    return DFFNet(encoder).eval()


def bench_predict_tiling(encoder: str = "resnet18", height: int = 1024, width: int = 1600, input_size: int = 320,
                         tile_size: int = 640, overlap: float = 0.2, repeats: int = 3) -> dict:
    """``overlap``: a fraction of ``tile_size``, as ``tile.overlap`` (0.2 of 640 = 128 px); the result's ``overlap``
    is in pixels."""
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    net = _net(encoder)
    size = (input_size, input_size)
    whole = CheckpointPredictor(net, InferenceSettings.papers_protocol(size), device="cpu")
    tiled = CheckpointPredictor(net, InferenceSettings(size, tile=TileSettings(mode=True, size=tile_size,
                                                                               overlap=overlap)), device="cpu")
    overlap_px = overlap_pixels(overlap, tile_size)
    n_tiles = len(tile_starts(height, tile_size, overlap_px)) * len(tile_starts(width, tile_size, overlap_px))
    t_whole = _median_ms(lambda: whole.predict_image(rgb), repeats)
    t_tiled = _median_ms(lambda: tiled.predict_image(rgb), repeats)
    return {"encoder": encoder, "image": [height, width], "input_size": input_size, "tile_size": tile_size,
            "overlap": overlap_px, "overlap_fraction": overlap, "tiles": n_tiles, "whole_ms_per_image": t_whole,
            "tiled_ms_per_image": t_tiled,
            "tiled_over_whole": t_tiled / t_whole}


def bench_onnx_runtime(encoder: str = "resnet18", size: int = 320, repeats: int = 5) -> dict:
    import onnxruntime as ort

    from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from ..export import ExportWrapper, export_onnx

    model = ExportWrapper(_net(encoder), IMAGENET_MEAN, IMAGENET_STD).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, x, Path(tmp) / "m.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {"rgb": x.numpy()}
        with torch.inference_mode():
            t_torch = _median_ms(lambda: model(x), repeats)
            ref = model(x).numpy()
        t_ort = _median_ms(lambda: session.run(None, feed), repeats)
        diff = float(np.abs(session.run(None, feed)[0] - ref).max())
    return {"encoder": encoder, "size": size, "torch_ms_per_image": t_torch, "onnxruntime_ms_per_image": t_ort,
            "ort_over_torch": t_ort / t_torch, "max_abs_diff": diff}
