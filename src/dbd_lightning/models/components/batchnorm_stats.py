"""BatchNorm statistics re-estimated on new images, weights untouched (AdaBN).

Li, Wang, Shi, Liu & Hou, "Revisiting Batch Normalization For Practical Domain Adaptation" (ICLR-W 2017):
a network trained on a source domain (here: synthetic scenes) adapts to a target domain (real photographs)
by replacing each BatchNorm layer's running mean and variance with the target's, computed without any
label. Eq. (AdaBN): for every BN layer, ``mu_j <- E_target[x_j]``, ``sigma_j^2 <- Var_target[x_j]``, then
``y_j = gamma_j (x_j - mu_j) / sqrt(sigma_j^2 + eps) + beta_j`` with the trained ``gamma``, ``beta``.

Written here rather than with :func:`torch.optim.swa_utils.update_bn`, which averages the batches equally
(a short last batch counts as much as a full one; here each batch weighs by its images) and puts the *whole*
network in training mode: stochastic depth and dropout would then be active while the statistics are
gathered, so the statistics would not be those the network meets at test time. Here only the BatchNorm
layers are in training mode.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["recompute_batchnorm_statistics"]


@torch.no_grad()
def recompute_batchnorm_statistics(net: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Reset every BatchNorm layer of ``net`` and set its running statistics to the average, over
    ``batches``, of each batch's mean and (unbiased) variance, weighted by the batch's number of images (so a
    short last batch counts for its images, not as much as a full one; with equal batches this is the plain
    average of :class:`torch.nn.BatchNorm2d` with ``momentum=None``, bit for bit). The rest of the network runs
    in eval mode; parameters are not changed. ``net`` is left in eval mode with its layers' momenta restored.
    Returns the number of BatchNorm layers.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    net.eval()
    images = {m: 0 for m in norms}  # per layer: a layer may run more than once in a forward pass

    def weigh(module: nn.Module, inputs: tuple) -> None:
        # running <- running + (n / N) (this call's statistic - running): the image-weighted running mean
        images[module] += inputs[0].shape[0]
        module.momentum = inputs[0].shape[0] / images[module]

    for m in norms:
        m.reset_running_stats()
        m.train()
    hooks = [m.register_forward_pre_hook(weigh) for m in norms]
    seen = 0
    try:
        for x in batches:
            net(x)
            seen += 1
    finally:
        for hook in hooks:
            hook.remove()
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        net.eval()
    if seen == 0:
        raise ValueError("recompute_batchnorm_statistics: no batch given; the statistics were reset")
    return len(norms)
