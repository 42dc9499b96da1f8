"""``make bench`` case ``compute_floor``: the fastest a float32 forward can be on this CPU.

A network's forward needs at least (its convolution FLOPs) / (the machine's float32 matrix
throughput) seconds: convolutions are matrix products, and no runtime multiplies faster than
a large square ``torch.matmul`` on the same threads. This case measures that throughput
(median and best of ``repeats`` 2048 x 2048 products), counts the convolution FLOPs of
DFFNet-ResNeSt-101 and of the released DFFNet-Lite0 at 320 x 320 (forward hooks,
2 x output elements x kernel volume x input channels per group), and times each eager
forward in the same process, so a speed target can be checked against the floor: a target
below it cannot be met at equal (float32) outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils.timer import measure


def conv_flops(net: nn.Module, size: int) -> float:
    """Multiply-add FLOPs (x2) of every ``nn.Conv2d`` in one forward of a ``(1, 3, size, size)`` input."""
    total = [0.0]

    def hook(m: nn.Conv2d, _inputs, out: torch.Tensor) -> None:
        oc, oh, ow = out.shape[1:]
        total[0] += 2.0 * oc * oh * ow * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            net(torch.randn(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return total[0]


def bench_compute_floor(size: int = 320, repeats: int = 10, matmul: int = 2048, threads: int | None = 2) -> dict:
    from ..inference.predictor import CheckpointPredictor
    from ..inference.settings import InferenceSettings
    from ..models.dffnet import DFFNet
    from ..zoo import resolve_zoo

    if threads:
        torch.set_num_threads(int(threads))
    a, b = torch.randn(matmul, matmul), torch.randn(matmul, matmul)
    mm = measure(lambda: a @ b, repeats, warmup=2)
    peak = {"median": 2 * matmul**3 / mm.median / 1e9, "best": 2 * matmul**3 / mm.min / 1e9}
    torch.manual_seed(0)
    nets = {"dffnet_resnest101e": DFFNet("resnest101e").eval(),
            "zoo:dffnet_lite0_synth": CheckpointPredictor.from_run(resolve_zoo("zoo:dffnet_lite0_synth"),
                                                                   InferenceSettings.papers_protocol(),
                                                                   device="cpu", backend="torch").net}
    x = torch.randn(1, 3, size, size)
    out = {}
    for name, net in nets.items():
        flops = conv_flops(net, size)
        with torch.inference_mode():
            eager = measure(lambda n=net: n(x), max(3, repeats // 2), warmup=1)
        floor_ms = 1e3 * flops / 1e9 / peak["best"]
        out[name] = {"conv_gflop": flops / 1e9, "eager_ms_median": 1e3 * eager.median,
                     "floor_ms_at_best_matmul": floor_ms, "floor_over_eager": floor_ms / (1e3 * eager.median)}
    return {"size": size, "threads": torch.get_num_threads(), "matmul_gflops": peak, "networks": out,
            "note": "floor = conv FLOPs / best float32 matmul throughput; a faster float32 forward is not possible"}
