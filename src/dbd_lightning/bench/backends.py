"""``make bench`` cases of the inference backends (registered in :data:`.runner.CASES`).

Everything is measured side by side in one process with interleaved repeats
(variant A, B, C, A, B, C, ...), so a machine shared with other jobs slows every
variant alike (:func:`~dbd_lightning.utils.timer.measure`); the JSON gives the median and the minimum of each variant and the
ratios of both to eager torch. Random weights (no download).

* :func:`bench_backend_forward`: DFFNet forward at 320 x 320, batch 1: eager torch
  (what ``predict``/``eval`` ran before ``backend=``), each torch-backend rewrite
  alone and together, and onnxruntime; with the max |probability difference| of each
  to eager torch.
* :func:`bench_backend_eval`: ``eval`` end to end on ``n`` CUHK-size (640 x 480)
  synthetic image/GT pairs written to a temporary folder: read -> predict ->
  metrics (:func:`~dbd_lightning.reports.evaluate.evaluate_sources`), per backend.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from ..inference.backends import OnnxRuntimeBackend, TorchBackend
from ..inference.fold_bn import fold_batchnorm
from ..utils.timer import measure, once, summarize


class _Eager:
    """The pre-``backend=`` path: the trained network as is, under ``torch.inference_mode``."""

    name = "eager"

    def __init__(self, net, channels_last: bool = False):
        self.net, self.channels_last = net, channels_last

    @torch.inference_mode()
    def run(self, x):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)["logits"].float()


def bench_backend_forward(encoder: str = "resnest101e", size: int = 320, repeats: int = 10,
                          threads: int | None = 2) -> dict:
    from ..models.dffnet import DFFNet

    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    net = DFFNet(encoder).eval()
    for m in net.modules():  # trained-like BatchNorm statistics (random init has mean 0, var 1)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    (folded, n_folded, _), fold_s = once(lambda: fold_batchnorm(net, torch.randn(1, 3, 64, 64)))
    cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    with tempfile.TemporaryDirectory() as tmp:
        ort_backend, export_s = once(lambda: OnnxRuntimeBackend(net, (size, size), cache_dir=tmp))
        # a cache hit: hash + checks + session
        _, cached_s = once(lambda: OnnxRuntimeBackend(net, (size, size), cache_dir=tmp))
        variants = {
            "eager": _Eager(net),
            "inference_only_fold_bn": _Eager(folded),
            "inference_only_channels_last": _Eager(cl, channels_last=True),
            "torch_backend": TorchBackend(net),  # fold_bn + channels_last
            "onnxruntime": ort_backend,
        }
        ref = torch.sigmoid(variants["eager"].run(x))
        diffs = {k: float((torch.sigmoid(b.run(x)) - ref).abs().max()) for k, b in variants.items()}
        times = measure({k: (lambda b=b: b.run(x)) for k, b in variants.items()}, repeats, warmup=1)
    return {"encoder": encoder, "size": size, "batch": 1, "threads": torch.get_num_threads(), "repeats": repeats,
            **summarize(times, "eager"), "max_abs_diff_probability": diffs, "bn_pairs_folded": n_folded,
            "fold_s": fold_s, "onnx_export_s": export_s, "onnx_cached_load_s": cached_s,
            "note": "interleaved repeats in one process on a shared machine: compare the ratios"}


def write_synthetic_pairs(root: Path, n: int, height: int = 480, width: int = 640, seed: int = 0) -> Path:
    """``n`` smooth random images (JPEG) with blob masks (PNG, white = in focus) under ``root/image|gt``."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True, exist_ok=True)
    (root / "gt").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        image = np.clip(image.astype(np.int16) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
        blob = cv2.resize(rng.random((6, 8)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(root / "image" / f"{i:04d}.jpg"), image[..., ::-1])
        cv2.imwrite(str(root / "gt" / f"{i:04d}.png"), ((blob > 0.5) * 255).astype(np.uint8))
    return root


def bench_backend_eval(encoder: str = "resnest101e", n: int = 100, size: int = 320, repeats: int = 1,
                       threads: int | None = 2) -> dict:
    """``eval`` of ``n`` 640 x 480 pairs, end to end, per backend (today = eager torch, as before ``backend=``)."""
    from ..data.folder import ImageMaskFolder
    from ..inference.predictor import CheckpointPredictor
    from ..inference.settings import InferenceSettings
    from ..models.dffnet import DFFNet
    from ..reports.evaluate import evaluate_sources

    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    net = DFFNet(encoder).eval()
    with tempfile.TemporaryDirectory() as tmp:
        dataset = ImageMaskFolder(write_synthetic_pairs(Path(tmp) / "data", n))
        predictors = {}
        for name in ("today", "torch", "onnxruntime"):
            pred = CheckpointPredictor(net, InferenceSettings.papers_protocol((size, size)), device="cpu",
                                       backend="torch")
            if name == "today":
                pred.backend = _Eager(net)
            elif name == "onnxruntime":
                pred.backend = OnnxRuntimeBackend(net, (size, size), cache_dir=Path(tmp) / "onnx")
            predictors[name] = pred
        results: dict = {}

        def one(name):
            def run():
                results[name] = evaluate_sources({name: predictors[name]}, {"synthetic": dataset},
                                                 {"preset": "ddffnet"}, pr_curves=True, grid_samples=0,
                                                 progress=False).results[name]["synthetic"]
            return run

        times = measure({k: one(k) for k in predictors}, repeats, warmup=0)
    summary = summarize(times, "today", unit=1.0, unit_name="s")
    metric_diff = {k: max(abs(results[k][m] - results["today"][m]) for m in results["today"])
                   for k in results}
    return {"encoder": encoder, "images": n, "image_size": [480, 640], "input_size": size,
            "threads": torch.get_num_threads(), "repeats": repeats, **summary,
            "speedup_vs_today_median": {k: 1 / v for k, v in summary["ratio_median"].items()},
            "speedup_vs_today_min": {k: 1 / v for k, v in summary["ratio_min"].items()},
            "max_metric_diff_vs_today": metric_diff,
            "note": "read -> predict -> metrics; interleaved passes in one process on a shared machine"}
