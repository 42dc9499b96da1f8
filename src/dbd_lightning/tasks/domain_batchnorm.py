"""A second domain's BatchNorm running statistics, swapped in for that domain's forward passes.

Domain-specific BatchNorm (Chang, You, Seo, Kwak & Han, "Domain-Specific Batch Normalization for
Unsupervised Domain Adaptation", CVPR 2019), with every weight shared: the network's own buffers hold one
domain's running statistics, :class:`DomainBatchNormStatistics` the other's. Each domain's running mean
and variance then only see its own batches (PyTorch's update, ``mu <- (1 - momentum) mu + momentum
E_batch[x]``), where one set of buffers averages the two domains. With the unlabeled photographs'
statistics in the network's buffers this is AdaBN (Li et al. 2017, ``models/components/batchnorm_stats.py``)
kept up during training.

Written by hand: no library keeps per-domain BatchNorm statistics for an unchanged ``torch.nn`` network
(DSBN implementations replace the layers, which would change every checkpoint's keys).
"""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn

__all__ = ["DomainBatchNormStatistics"]


class DomainBatchNormStatistics(nn.Module):
    """A second domain's BatchNorm running statistics for ``net``, swapped in by :meth:`swapped`.

    The buffers (``mean_i`` / ``var_i`` / ``count_i`` per BatchNorm layer that tracks statistics, in
    ``net.modules()`` order) start as copies of ``net``'s and are saved with the module that owns this one,
    so a resumed run keeps both domains' statistics.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        # a plain list, not a ModuleList: the layers belong to net (their weights are not saved twice)
        self.norms = [m for m in net.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        for i, m in enumerate(self.norms):
            self.register_buffer(f"mean_{i}", m.running_mean.detach().clone())
            self.register_buffer(f"var_{i}", m.running_var.detach().clone())
            self.register_buffer(f"count_{i}", m.num_batches_tracked.detach().clone())

    def __len__(self) -> int:
        return len(self.norms)

    def _exchange(self) -> None:
        # the tensors change places (attribute assignment), no value is copied: a copy_ into a running
        # statistic would bump its version counter, and autograd saved it for the backward pass of the
        # forward just run (native_batch_norm_backward takes the running statistics)
        for i, m in enumerate(self.norms):
            for attr, name in (("running_mean", f"mean_{i}"), ("running_var", f"var_{i}"),
                               ("num_batches_tracked", f"count_{i}")):
                own, other = getattr(m, attr), getattr(self, name)
                setattr(m, attr, other)
                setattr(self, name, own)

    @contextmanager
    def swapped(self):
        """Inside, ``net``'s BatchNorm layers hold (and update) this domain's statistics; on exit each set is
        back in its place, this one with what the forward passes inside added to it."""
        self._exchange()
        try:
            yield
        finally:
            self._exchange()
