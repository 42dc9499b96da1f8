"""``make bench`` case ``backends_forward_released``: the released model per backend, with its real-sample scores.

The weights of a zoo model (default ``zoo:dffnet_lite0_synth``, shipped in the package)
at 320 x 320, batch 1, interleaved in one process (:func:`~dbd_lightning.utils.timer.measure`):
eager torch (the trained network as is), ``backend=torch`` (BatchNorm folded,
channels-last), ``backend=onnxruntime`` (float32 graph) and
``backend=onnxruntime_int8`` (decoder convolutions in int8, :mod:`.quantize`). Besides
the times: each backend's max |probability difference| to eager torch on one input and
its MAE / F-beta / IoU on the 10 real photographs shipped in the package (papers'
protocol, D-DFFNet convention), so a faster backend is never read without what it
changes.
"""

from __future__ import annotations

import tempfile

import torch

from ..inference.backends import OnnxRuntimeBackend, OnnxRuntimeInt8Backend, TorchBackend
from ..utils.timer import measure, summarize
from .backends import _Eager


def bench_released_forward(name: str = "zoo:dffnet_lite0_synth", size: int = 320, repeats: int = 20,
                           threads: int | None = 2, real_samples: bool = True) -> dict:
    from ..inference.predictor import CheckpointPredictor
    from ..inference.settings import InferenceSettings
    from ..reports.real_samples import score_on_real_samples
    from ..zoo import resolve_zoo

    if threads:
        torch.set_num_threads(int(threads))
    zoo = resolve_zoo(name)
    base = CheckpointPredictor.from_run(zoo, InferenceSettings.papers_protocol((size, size)), device="cpu",
                                        backend="torch")
    net = base.net
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    mean, std = base.mean.flatten().tolist(), base.std.flatten().tolist()
    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "eager": _Eager(net),
            "torch_backend": TorchBackend(net),
            "onnxruntime": OnnxRuntimeBackend(net, (size, size), cache_dir=tmp),
            "onnxruntime_int8": OnnxRuntimeInt8Backend(net, (size, size), cache_dir=tmp, mean=mean, std=std),
        }
        int8_meta = next(iter(variants["onnxruntime_int8"].int8_meta.values()))
        ref = torch.sigmoid(variants["eager"].run(x))
        diffs = {k: float((torch.sigmoid(b.run(x)) - ref).abs().max()) for k, b in variants.items()}
        times = measure({k: (lambda b=b: b.run(x)) for k, b in variants.items()}, repeats, warmup=1)
        scores = {}
        if real_samples:
            for k, backend in variants.items():
                base.backend = backend  # the same predictor (resize, normalise), another backend
                scores[k] = score_on_real_samples(lambda rgb: base.predict_image(rgb)["focus"], {"preset": "ddffnet"})
    return {"model": name, "size": size, "batch": 1, "threads": torch.get_num_threads(), "repeats": repeats,
            **summarize(times, "eager"), "max_abs_diff_probability": diffs,
            "int8_validation_scenes": {k: int8_meta.get(k) for k in
                                       ("mean_abs_diff", "max_abs_diff", "decision_flip_fraction", "quantized_convs",
                                        "float32_convs", "accepted")},
            "real_samples": scores,
            "note": "interleaved repeats in one process; medians in ms, ratios to eager torch"}
