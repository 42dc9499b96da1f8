"""DD benchmark cases (``python -m dbd_lightning.bench --cases ddnet_infer_resnext101``).

Inference time of DDNet at the authors' 320 x 320 (the paper reports over 30 fps on a GPU)
split into encoder and decoder (5 SRFB + heads + SAB + fusion), with FLOPs from
``torch.utils.flop_counter`` and parameter counts.
"""

from __future__ import annotations

import torch

from ...utils.timer import measure
from .torch_model import DDNet


def bench_ddnet_infer(encoder: str = "resnext101_32x4d", size: int = 320, repeats: int = 5,
                      pool_taps: bool = False) -> dict:
    """Forward time / FLOPs of DDNet and of its encoder alone (batch 1, inference mode)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = DDNet(encoder, pool_taps=pool_taps).eval()
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        full = measure(lambda: net(x), repeats, warmup=1).median
        enc = measure(lambda: net.encode(x), repeats, warmup=1).median
        with FlopCounterMode(display=False) as total_flops:
            net(x)
        with FlopCounterMode(display=False) as enc_flops:
            net.encode(x)
    params = sum(p.numel() for p in net.parameters())
    enc_params = sum(p.numel() for p in net.encoder.parameters())
    total, backbone = total_flops.get_total_flops(), enc_flops.get_total_flops()
    return {
        "encoder": encoder, "size": size, "batch": 1,
        "ms_per_image": full * 1e3, "images_per_s": 1 / full,
        "encoder_ms": enc * 1e3, "decoder_ms": (full - enc) * 1e3,
        "encoder_gflops": backbone / 1e9, "decoder_gflops": (total - backbone) / 1e9,
        "params_total_M": params / 1e6, "params_decoder_M": (params - enc_params) / 1e6,
    }
