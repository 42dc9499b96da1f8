"""Memory preflight: does one training step of the composition fit the machine? (``preflight.memory``)

BTBNet keeps VGG16 at full resolution (~5 GiB of activations per 320 x 320 sample,
experiments/btbnet_memory.md), so ``model=btbnet data=synthetic`` (batch 6) was killed by
the kernel's OOM killer without a word. Before Hydra creates the run folder,
:func:`estimate_training_memory` runs the network's forward pass on the ``meta`` device (no
memory, no compute) at the configured input size and sums the tensors autograd saves for the
backward pass (the same measure as ``models.btbnet.bench.estimate_btbnet_memory``, checked
there against a measured CPU step: estimate + gradients within 3 % at 320 px). The peak of a
step is then about::

    base (interpreter, torch: BASE_MIB) + params x 4 (weights, grads, two Adam moments)
        + batch x saved activations per sample x (1 + WORKSPACE)

:func:`check_training_memory` compares it with the memory available to this process (CPU:
``MemAvailable`` and the cgroup limit; CUDA: free device memory) and raises
:class:`~dbd_lightning.utils.errors.MemoryPreflightError` with the batch size that fits.
Measured (CPU, one Adam step in a fresh process, peak RSS vs estimate): dffnet_small 320 px batch 6
1772 vs 1901 MiB; btbnet_small 320 px batch 2 1928 vs 1946 MiB; btbnet 128 px batch 1 2040 vs 2656
MiB; btbnet 320 px batch 1 (experiments/btbnet_memory.md) 6012 vs 7053 MiB: within -0 / +30 %.
Teachers of distillation runs (frozen, no saved activations) and the data loader workers are
not counted: the estimate is a lower bound for those.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .errors import MemoryPreflightError

log = logging.getLogger(__name__)

MIB = 2**20
GIB = 2**30
#: resident memory of the interpreter + torch + Lightning + Hydra before the model: 670 MiB in the
#: BTBNet bench process, 830-1030 MiB (less the weights) in a process that composed a train config
BASE_MIB = 1000
#: backward workspace on top of the saved activations (3 % measured for BTBNet at 320 px) + margin
WORKSPACE = 0.10


def saved_activation_bytes(net: Any, x: Any) -> int:
    """Bytes autograd saves for backward in one forward of ``net`` on ``x`` (both on the meta device)."""
    import torch

    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        if t.is_leaf and t.requires_grad:  # parameters: counted separately
            return t
        seen.setdefault(id(t), t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    return int(sum(seen.values()))


def _image_size(cfg: DictConfig) -> tuple[int, int] | None:
    size = OmegaConf.select(cfg, "data.image_size", default=None)
    if size is None:
        return None
    if isinstance(size, int):
        return size, size
    size = list(size)
    return (int(size[0]), int(size[-1])) if size else None


def estimate_training_memory(cfg: DictConfig) -> dict[str, Any] | None:
    """Peak memory of one training step of ``cfg`` (module docstring); ``None`` when not estimable."""
    import hydra
    import torch

    size = _image_size(cfg)
    net_cfg = OmegaConf.select(cfg, "model.net", default=None)
    if size is None or net_cfg is None:
        return None
    from .config import trainable_on

    if trainable_on(cfg) != "images":  # a pipeline or a patch classifier: no image-sized training step
        return None
    node = OmegaConf.to_container(net_cfg, resolve=True)
    node.pop("weights_file", None)  # nothing is read from disk on the meta device
    if "pretrained" in node:
        node["pretrained"] = False
    for key in ("init_ckpt",):
        node.pop(key, None)
    try:
        with torch.device("meta"):
            net = hydra.utils.instantiate(node).train()
            x = torch.empty(2, 3, *size)  # 2: BatchNorm after a global pool refuses one value per channel
        per_sample = saved_activation_bytes(net, x) // 2
        params = sum(p.numel() * p.element_size() for p in net.parameters())
    except Exception as exc:  # a model that cannot run on the meta device: no estimate, no check
        log.info("memory preflight: no estimate for %s (%s: %s)", node.get("_target_"), type(exc).__name__, exc)
        return None
    batch = int(OmegaConf.select(cfg, "data.batch_size", default=1) or 1)
    fixed = BASE_MIB * MIB + 4 * params
    per = per_sample * (1 + WORKSPACE)
    return {"image_size": list(size), "batch_size": batch, "params_bytes": params, "per_sample_bytes": per_sample,
            "fixed_bytes": fixed, "peak_bytes": int(fixed + batch * per), "per_sample_with_workspace": per}


def _cgroup_free() -> int | None:
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit == "max" or int(limit) > 2**60:
                return None
            return int(limit) - int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def available_memory(cfg: DictConfig) -> tuple[int, str] | None:
    """(bytes available to a training step, where): the GPU's free memory or the CPU's available RAM."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="cpu") or "cpu")
    if accelerator in ("gpu", "cuda", "auto"):
        import torch

        if torch.cuda.is_available():
            free, _ = torch.cuda.mem_get_info()
            return int(free), f"free memory of GPU 0 ({torch.cuda.get_device_name(0)})"
        if accelerator != "auto":
            return None  # Lightning reports the missing GPU itself
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        avail = int(info["MemAvailable"].strip().split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    cgroup = _cgroup_free()
    # this process's own memory so far is part of what the step can use
    return (min(avail, cgroup) if cgroup is not None else avail), "available RAM (MemAvailable / cgroup limit)"


def check_training_memory(cfg: DictConfig) -> dict[str, Any] | None:
    """Raise :class:`MemoryPreflightError` when the estimated peak does not fit; returns the estimate."""
    est = estimate_training_memory(cfg)
    where = available_memory(cfg)
    if est is None or where is None:
        return est
    avail, what = where
    est["available_bytes"] = avail
    log.info("memory preflight: ~%.2f GiB needed (%.2f GiB/sample x %d + %.2f GiB fixed), %.2f GiB %s",
             est["peak_bytes"] / GIB, est["per_sample_with_workspace"] / GIB, est["batch_size"],
             est["fixed_bytes"] / GIB, avail / GIB, what)
    if est["peak_bytes"] <= avail:
        return est
    fits = max(0, math.floor((avail - est["fixed_bytes"]) / est["per_sample_with_workspace"]))
    h, w = est["image_size"]
    model = OmegaConf.select(cfg, "model.net._target_", default="the model")
    advice = (f"set data.batch_size={fits} (it fits: ~{(est['fixed_bytes'] + fits * est['per_sample_with_workspace']) / GIB:.1f} GiB)"
              if fits >= 1 else "even data.batch_size=1 does not fit: use a smaller data.image_size, a smaller model "
              "(e.g. the *_small configs) or a machine with more memory")
    raise MemoryPreflightError(
        f"the training step does not fit in memory: {model} at {h}x{w} with data.batch_size={est['batch_size']} needs "
        f"about {est['peak_bytes'] / GIB:.1f} GiB ({est['per_sample_with_workspace'] / GIB:.2f} GiB of activations per "
        f"sample + {est['fixed_bytes'] / GIB:.2f} GiB for the process, weights, gradients and optimizer state), "
        f"but only {avail / GIB:.1f} GiB is {what.split(' (')[0]}. Fix: {advice}. "
        "(preflight.memory=false skips this check.)")
