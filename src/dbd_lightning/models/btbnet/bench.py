"""BTBNet benchmark cases (``python -m dbd_lightning.bench --cases btbnet_train_320``).

Full-resolution VGG16 (no pooling) is the memory cost of BTBNet by design (Sec. 3.1). One
training step (forward + backward of the paper loss) at batch 1 reports time and peak memory:
``torch.cuda.max_memory_allocated`` on CUDA; on CPU the bench runner records the case
process's ``ru_maxrss`` (``peak_rss_MiB``) and this function adds the resident-set growth
over the model alone (``step_rss_MiB``).
"""

from __future__ import annotations

import resource
from collections.abc import Sequence

import torch

from ...utils.timer import measure, once
from .torch_model import BTBNet


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_btbnet_step(
    size: int = 320,
    scales: Sequence[float] = (1.0, 0.8, 0.6),
    rrnet_steps: int = 3,
    fusion: str = "fnet",
    widths: Sequence[int] = (64, 128, 256, 512, 512),
    ffic_channels: Sequence[int] = (256, 128, 64, 1),
    top_bottom: bool = True,
    batch: int = 1,
    repeats: int = 1,
    device: str = "cpu",
) -> dict:
    """One SGD step (BCE on the final map + every stream map, eq. 7) and one inference forward."""
    from ...losses.detection import DeepSupervisionLoss

    dev = torch.device(device)
    net = BTBNet(scales=scales, rrnet_steps=rrnet_steps, fusion=fusion, widths=widths,
                 ffic_channels=ffic_channels, top_bottom=top_bottom).to(dev).train()
    params = sum(p.numel() for p in net.parameters())
    loss_fn = DeepSupervisionLoss(edge_weight=0.0)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, size, size, device=dev)
    data = {"image": x, "mask": (torch.rand(batch, 1, size, size, device=dev) > 0.5).float()}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    base_rss = _rss_mib()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(data["image"]), data)["loss"].backward()
        opt.step()
        sync()

    if dev.type == "cuda":
        step()  # warm-up (cuDNN autotune), then measure from a clean peak
        torch.cuda.reset_peak_memory_stats(dev)
    step_s = measure(step, repeats, warmup=0).median  # CUDA: warmed up above, before the peak reset
    out = {"size": size, "batch": batch, "scales": list(scales), "fusion": fusion, "rrnet_steps": rrnet_steps,
           "top_bottom": top_bottom, "widths": list(widths), "device": str(dev), "params_M": params / 1e6,
           "train_step_s": step_s}
    if dev.type == "cuda":
        out["train_peak_MiB"] = torch.cuda.max_memory_allocated(dev) / 2**20
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        out["step_rss_MiB"] = _rss_mib() - base_rss
    net.eval()
    with torch.inference_mode():
        out["infer_s"] = once(lambda: net(x), sync=sync)[1]
    if dev.type == "cuda":
        out["infer_peak_MiB"] = torch.cuda.max_memory_allocated(dev) / 2**20
        out["gpu"] = torch.cuda.get_device_name(dev)
    return out


def estimate_btbnet_memory(size: int = 320, batch: int = 1, **net_kwargs) -> dict:
    """Activation memory and FLOPs of one training step, computed on the ``meta`` device (no compute).

    ``saved_MiB``: tensors autograd keeps for the backward pass (float32, de-duplicated by
    storage), i.e. the training activation memory on top of weights, gradients and the
    optimizer state (``params_MiB`` each for weights / grads / SGD momentum). ``fwd_gflop``:
    forward FLOPs from :class:`torch.utils.flop_counter.FlopCounterMode` (2 per MAC).
    Checked against a measured CPU step in experiments/btbnet_memory.md.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = BTBNet(**net_kwargs).train()
        x = torch.randn(batch, 3, size, size)
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        if t.is_leaf and t.requires_grad:  # parameters: counted in params_MiB, not activations
            return t
        key = id(t.untyped_storage()) if t.device.type != "meta" else (t.data_ptr() or id(t))
        seen.setdefault(key, t.untyped_storage().nbytes() if t.device.type != "meta" else t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), FlopCounterMode(display=False) as fc:
        out = net(x)
    params = sum(p.numel() for p in net.parameters())
    return {"size": size, "batch": batch, **{k: (list(v) if isinstance(v, tuple | list) else v)
                                               for k, v in net_kwargs.items()},
            "params_M": params / 1e6, "params_MiB": params * 4 / 2**20,
            "saved_MiB": sum(seen.values()) / 2**20, "n_saved": len(seen),
            "output_shape": list(out["logits"].shape), "fwd_gflop": fc.get_total_flops() / 1e9}
