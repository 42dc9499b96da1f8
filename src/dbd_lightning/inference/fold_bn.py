"""Fold inference-mode BatchNorm into the convolution that feeds it (a copy of the network; inference only).

``y = gamma * (conv(x) - mu) / sqrt(var + eps) + beta`` is the convolution with
weights ``W * s`` and bias ``(b - mu) * s + beta``, ``s = gamma / sqrt(var + eps)``
per output channel. Written by hand because the library fusers need either the
module names of every pair (``torch.ao.quantization.fuse_modules``) or a
symbolic trace of the whole network (``torch.fx``), which timm encoders with
dict outputs and shape-dependent resizes do not always allow. The pairs are
found by running the network once with hooks: a BatchNorm whose input *is*
(same tensor object) the output of a ``Conv2d`` in every call. The folded copy is
checked against the original on that input and discarded if it differs, so a
conv output that also feeds another layer (which this test cannot see) can never
slip through.
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict

import torch
from torch import nn

log = logging.getLogger(__name__)


def _logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    return out["logits"] if isinstance(out, dict) else out


def conv_bn_pairs(net: nn.Module, example: torch.Tensor) -> list[tuple[str, str]]:
    """``(conv name, batchnorm name)`` of every BatchNorm2d fed only by one Conv2d's output, in every call."""
    produced: dict[int, tuple[str, torch.Tensor]] = {}
    conv_calls: dict[str, int] = defaultdict(int)
    bn_sources: dict[str, list[str | None]] = defaultdict(list)
    hooks = []

    def on_conv(name):
        def hook(_m, _inp, out):
            conv_calls[name] += 1
            produced[id(out)] = (name, out)  # keeps the tensor alive: ids stay unique during the pass
        return hook

    def on_bn(name):
        def hook(_m, inp, _out):
            src = produced.get(id(inp[0]))
            bn_sources[name].append(src[0] if src is not None and src[1] is inp[0] else None)
        return hook

    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(on_conv(name)))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(on_bn(name)))
    try:
        with torch.inference_mode():
            _logits(net, example)
    finally:
        for h in hooks:
            h.remove()
    pairs, used = [], set()
    for bn, sources in bn_sources.items():
        conv = sources[0]
        if conv is None or any(s != conv for s in sources) or conv_calls[conv] != len(sources) or conv in used:
            continue
        used.add(conv)
        pairs.append((conv, bn))
    return pairs


def _replacement(bn: nn.BatchNorm2d) -> nn.Module | None:
    """What stays of a folded BatchNorm: nothing, or the activation of timm's ``BatchNormAct2d``."""
    if type(bn) is nn.BatchNorm2d:
        return nn.Identity()
    if isinstance(getattr(bn, "act", None), nn.Module) and isinstance(getattr(bn, "drop", None), nn.Module):
        return nn.Sequential(bn.drop, bn.act)
    return None  # an unknown BatchNorm subclass: its forward may do more, leave it alone


def _set(net: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, module)


@torch.no_grad()
def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    w = conv.weight
    conv.weight.copy_((w.double() * scale.view(-1, *([1] * (w.dim() - 1)))).to(w.dtype))
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(var)
    conv.bias = nn.Parameter(((bias - mean) * scale + beta).to(w.dtype), requires_grad=False)


def fold_batchnorm(net: nn.Module, example: torch.Tensor, atol: float = 1e-4) -> tuple[nn.Module, int, float]:
    """A copy of ``net`` (eval mode) with every foldable BatchNorm folded into its conv.

    Returns ``(network, number of folded pairs, max |logits difference| on example)``;
    ``net`` itself is untouched (its weights and state-dict keys stay as trained). When
    nothing folds, or the folded copy differs by more than ``atol`` (relative to the largest
    logit when that exceeds 1), ``net`` is returned
    with 0 pairs.
    """
    net = net.eval()
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        return net, 0, 0.0  # nothing to fold: no probe forward
    pairs = [(c, b) for c, b in conv_bn_pairs(net, example)
             if _replacement(net.get_submodule(b)) is not None and net.get_submodule(b).track_running_stats
             and net.get_submodule(b).running_var is not None]
    if not pairs:
        return net, 0, 0.0
    folded = copy.deepcopy(net).eval()
    for conv_name, bn_name in pairs:
        bn = folded.get_submodule(bn_name)
        _fold_pair(folded.get_submodule(conv_name), bn)
        _set(folded, bn_name, _replacement(bn))
    with torch.inference_mode():
        ref, got = _logits(net, example), _logits(folded, example)
    diff = float((ref.float() - got.float()).abs().max())
    bound = atol * max(1.0, float(ref.float().abs().max()))  # float rounding grows with the logits' size
    if not diff <= bound:
        log.info("BatchNorm folding skipped: the folded network differs by %.3g > %.3g", diff, bound)
        return net, 0, diff
    return folded, len(pairs), diff
