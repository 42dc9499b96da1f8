"""Test-time entropy minimisation of the BatchNorm scales and shifts (TENT), no label.

Wang, Shelhamer, Liu, Olshausen & Darrell, "Tent: Fully Test-Time Adaptation by Entropy Minimization"
(ICLR 2021). A trained network adapts to unlabeled target images by minimising the entropy of its own
predictions, Eq. (1) ``H(y) = - sum_c p(y_c) log p(y_c)``, with two restrictions that keep it from drifting
(their Sec. 3): only the BatchNorm affine parameters ``gamma``, ``beta`` are updated, and every BatchNorm layer
normalises with the current batch's statistics. For a per-pixel two-class map with ``p = sigmoid(z)`` the
entropy is ``H = -p log p - (1 - p) log(1 - p) = softplus(z) - p z`` (:func:`binary_entropy`), averaged over
the pixels and the images of a batch.

Written here because no maintained library offers TENT for an arbitrary torch network (the authors'
reference is a script for classifiers); it is a few lines on top of ``torch.optim.Adam``.
``max_entropy`` is the reliable-sample filter of EATA (Niu et al., ICML 2022, Eq. 6) and SAR (Niu et al., ICLR
2023, Eq. 2), applied per pixel: only pixels whose entropy is at most ``E0`` enter the loss, averaged over them.
High-entropy predictions give large and noisy gradients (SAR Sec. 4) -- here, the pixels near the decision
boundary that a large step can flip either way. SAR's ``E0 = 0.4 ln C`` is ``0.4 ln 2`` for two classes; the
default (no filter) is TENT. ``sam_rho`` > 0 is SAR's sharpness-aware step (their Eq. 4-5, after Foret et al.,
"Sharpness-Aware Minimization", ICLR 2021): the gradient is taken at ``w + rho g / ||g||`` (``g`` the gradient of
the filtered entropy at ``w``, the norm over all BatchNorm scales and shifts together), over the pixels the
filter keeps at both points, and the step is taken from ``w``; it seeks flat minima of the entropy, which SAR found keeps
the adaptation from collapsing. Its base optimiser here is the same Adam as TENT's (SAR used SGD).
``reset_entropy`` is SAR's model recovery (their Sec. 5, "Model recovery scheme"): a moving average
``e_m <- 0.9 e_m + 0.1 L`` of each step's loss (the filtered entropy of the step's gradient, at the perturbed point
with ``sam_rho``; ``e_m`` starts at the first one) that falls below ``reset_entropy`` marks a collapse to trivial
maps, and the scales and shifts go back to their values before the first step, Adam's moments cleared, ``e_m``
started afresh (SAR's reference code keeps the old ``e_m``, so it resets again until the average climbs back;
here the recovered model is given a fresh average). A non-finite loss does not enter the average. SAR's threshold is 0.2 nats for 1000 classes (0.029 of the largest entropy, ``ln 1000``).

The BatchNorm running statistics are left as they were: the network predicts with them afterwards, so
re-estimate them for the adapted scales (:mod:`.batchnorm_stats`), as ``python -m dbd_lightning.adapt
method=tent`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["batchnorm_affine", "binary_entropy", "filtered_entropy", "minimize_entropy", "sharpness_aware_gradient"]


def batchnorm_affine(net: nn.Module) -> list[nn.Parameter]:
    """The BatchNorm scales and shifts of ``net`` (what TENT updates), in module order."""
    return [p for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for p in (m.weight, m.bias) if p is not None]


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-element entropy (nats) of ``Bernoulli(sigmoid(logits))``: ``softplus(z) - sigmoid(z) z``, exact
    and finite for any logit (the ``p log p`` form is ``0 * -inf`` at saturation)."""
    return F.softplus(logits) - torch.sigmoid(logits) * logits


def filtered_entropy(logits: torch.Tensor, max_entropy: float | None = None) -> tuple[torch.Tensor, float]:
    """The mean :func:`binary_entropy` over the elements whose entropy is at most ``max_entropy`` (all when
    ``None``), and the fraction kept. Nothing kept: a zero loss that still depends on ``logits`` (no step)."""
    entropy = binary_entropy(logits)
    return _kept_mean(entropy, _reliable(entropy, max_entropy))


def _reliable(entropy: torch.Tensor, max_entropy: float | None,
              within: torch.Tensor | None = None) -> torch.Tensor | None:
    """The boolean mask of elements with entropy at most ``max_entropy`` (and inside ``within`` when given);
    None without a filter (every element)."""
    if max_entropy is None:
        return None
    keep = entropy.detach() <= max_entropy
    return keep if within is None else keep & within


def _kept_mean(entropy: torch.Tensor, keep: torch.Tensor | None) -> tuple[torch.Tensor, float]:
    """The mean of ``entropy`` over ``keep`` (all when None) and the fraction kept; nothing kept: a zero loss
    that still depends on ``entropy``."""
    if keep is None:
        return entropy.mean(), 1.0
    weight = keep.to(entropy.dtype)
    count = weight.sum()
    return (entropy * weight).sum() / count.clamp_min(1.0), float(count) / entropy.numel()


def _finite(grads: list[torch.Tensor | None]) -> bool:
    """Whether at least one gradient is present and every present one is finite."""
    present = [g for g in grads if g is not None]
    return bool(present) and all(bool(torch.isfinite(g).all()) for g in present)


def _reset(params: list[nn.Parameter], initial: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    """SAR's model recovery: ``params`` back to ``initial``, the optimiser's moments and step counts cleared."""
    with torch.no_grad():
        for p, w in zip(params, initial, strict=True):
            p.copy_(w)
    optimizer.state.clear()


def sharpness_aware_gradient(net: nn.Module, x: torch.Tensor, params: list[nn.Parameter], rho: float,
                             output: str = "logits", max_entropy: float | None = None,
                             kept_at_w: torch.Tensor | None = None) -> tuple[float, float | None]:
    """Replace the ``.grad`` of ``params`` (the gradient ``g`` at ``w``, already computed) by the gradient of the
    filtered entropy at ``w + rho g / ||g||`` (SAR Eq. 4-5); ``params`` are back at ``w`` afterwards, bit for bit.

    With the filter (``max_entropy``), a pixel enters the loss at the perturbed point when its entropy there is
    at most ``max_entropy`` *and* it was kept at ``w`` (``kept_at_w``, boolean, the shape of the map): SAR
    filters the first pass's reliable samples again. Returns the fraction of pixels in the perturbed loss;
    0 means take no step (nothing kept, no gradient at all, or a non-finite one: every ``.grad`` is then None).
    Also returns the perturbed loss (SAR's ``L`` for its moving average), None where no perturbed pass ran (at a
    flat point, where the perturbed point is ``w`` itself, or when no step is taken)."""
    if not (math.isfinite(rho) and rho > 0):
        raise ValueError(f"sharpness_aware_gradient: rho must be a finite number > 0, got {rho}")
    grads = [p.grad for p in params]
    present = [g for g in grads if g is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in present])) if present else None
    if norm is None or not torch.isfinite(norm):
        for p in params:
            p.grad = None
        return 0.0, None
    if float(norm) == 0.0:
        return 1.0, None  # a flat point: the plain gradient (zero) is already the sharpness-aware one
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                p.add_(g, alpha=rho / float(norm))
            p.grad = None
    try:
        entropy = binary_entropy(net(x)[output])
        loss, fraction = _kept_mean(entropy, _reliable(entropy, max_entropy, kept_at_w))
        if fraction > 0:
            loss.backward()
    finally:
        with torch.no_grad():
            for p, w in zip(params, saved, strict=True):
                p.copy_(w)
    return fraction, (float(loss.detach()) if fraction > 0 else None)


def _step_gradient(net: nn.Module, x: torch.Tensor, params: list[nn.Parameter], loss: torch.Tensor, fraction: float,
                   keep: torch.Tensor | None, sam_rho: float, output: str, max_entropy: float | None) -> float | None:
    """Put the step's gradient in ``params``' ``.grad`` (the plain one of ``loss``, or with ``sam_rho`` the
    sharpness-aware one) and return the step's loss (SAR's ``L``: the perturbed one with ``sam_rho``); None when
    the batch must take no step: no pixel in the loss (Adam would still move the parameters on a zero gradient,
    by its momentum) or a gradient that is absent or not finite (a NaN would spread to every weight)."""
    if fraction == 0:
        return None
    loss.backward()
    step_loss = float(loss.detach())
    if sam_rho > 0:
        fraction_there, loss_there = sharpness_aware_gradient(net, x, params, sam_rho, output, max_entropy, keep)
        if fraction_there == 0:
            return None
        step_loss = step_loss if loss_there is None else loss_there
    return step_loss if _finite([p.grad for p in params]) else None


def minimize_entropy(net: nn.Module, batches: Iterable[torch.Tensor], lr: float, output: str = "logits",
                     max_entropy: float | None = None, kept: list[float] | None = None,
                     sam_rho: float = 0.0, stepped: list[bool] | None = None, reset_entropy: float = 0.0,
                     resets: list[int] | None = None, recovery: list[torch.Tensor] | None = None) -> list[float]:
    """One Adam step (``lr``, betas 0.9 / 0.999) per batch on the mean :func:`binary_entropy` of
    ``net(x)[output]`` (over the pixels at most ``max_entropy`` when given: :func:`filtered_entropy`; with
    ``sam_rho`` > 0 its gradient is the sharpness-aware one, :func:`sharpness_aware_gradient`),
    updating only the BatchNorm ``weight`` / ``bias``; the BatchNorm layers normalise with each batch's own
    statistics, the rest of the network runs in eval mode (no dropout, no stochastic depth).

    A batch takes no step when no pixel is in its loss, at ``w`` or (with ``sam_rho``) at the perturbed point,
    or when its gradient is not finite.
    The running statistics, the other parameters and their ``requires_grad`` flags are as before
    afterwards, and ``net`` is in eval mode. Returns the entropy of each batch (every pixel), before its
    step; ``kept``, when given, gets each batch's fraction of pixels in the loss at ``w``; ``stepped``, when
    given, whether the batch took its Adam step. ``reset_entropy`` > 0: SAR's model recovery (module docstring);
    ``resets``, when given, gets the index of each batch after whose step the scales and shifts were reset, to
    ``recovery`` (values in :func:`batchnorm_affine`'s order; default: those before the first batch)."""
    if not (math.isfinite(sam_rho) and sam_rho >= 0):
        raise ValueError(f"minimize_entropy: sam_rho must be a finite number >= 0 (0: TENT's plain step), got {sam_rho}")
    if not (math.isfinite(reset_entropy) and reset_entropy >= 0):
        raise ValueError(f"minimize_entropy: reset_entropy must be a finite number >= 0 (0: no reset), got {reset_entropy}")
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    affine = batchnorm_affine(net)
    if not affine:
        raise ValueError("minimize_entropy: the network has no BatchNorm layer with affine parameters")
    initial = [p.detach().clone() for p in affine] if recovery is None else recovery  # SAR's recovery point
    if [tuple(w.shape) for w in initial] != [tuple(p.shape) for p in affine]:
        raise ValueError("minimize_entropy: recovery must hold one tensor per BatchNorm scale and shift, "
                         "in batchnorm_affine's order")
    flags = {p: p.requires_grad for p in net.parameters()}
    momenta = [m.momentum for m in norms]
    # the running buffers are restored afterwards: momentum 0 alone keeps them only for finite batches
    # (0 * NaN is NaN)
    buffers = [{name: b.clone() for name, b in m.named_buffers(recurse=False)} for m in norms]
    chosen = {id(p) for p in affine}
    for p in net.parameters():
        p.requires_grad_(id(p) in chosen)
    net.eval()
    for m in norms:
        m.train()
        m.momentum = 0.0  # batch statistics for normalising; running = 1 * running + 0 * batch
    optimizer = torch.optim.Adam(affine, lr=lr, betas=(0.9, 0.999))
    moving: float | None = None  # SAR's e_m
    losses: list[float] = []
    try:
        for index, x in enumerate(batches):
            entropy = binary_entropy(net(x)[output])
            keep = _reliable(entropy, max_entropy)
            loss, fraction = _kept_mean(entropy, keep)
            optimizer.zero_grad(set_to_none=True)
            step_loss = _step_gradient(net, x, affine, loss, fraction, keep, sam_rho, output, max_entropy)
            step = step_loss is not None
            if step:
                optimizer.step()
            if step and reset_entropy > 0 and math.isfinite(step_loss):
                moving = step_loss if moving is None else 0.9 * moving + 0.1 * step_loss
                if moving < reset_entropy:
                    _reset(affine, initial, optimizer)
                    moving = None
                    if resets is not None:
                        resets.append(index)
            losses.append(float(entropy.detach().mean()))
            if kept is not None:
                kept.append(fraction)
            if stepped is not None:
                stepped.append(step)
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
            p.grad = None
        with torch.no_grad():
            for m, momentum, saved in zip(norms, momenta, buffers, strict=True):
                m.momentum = momentum
                for name, value in saved.items():
                    getattr(m, name).copy_(value)
        net.eval()
    return losses
