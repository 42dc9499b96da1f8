"""Deterministic training order: a seeded shuffle per epoch, one shard per rank, epoch-tagged indices.

Why: a resumed run (``ckpt_path=last``) and a DDP run must see the same samples
in the same order, with the same augmentation, as an uninterrupted
single-process run. torch's :class:`~torch.utils.data.DistributedSampler`
already draws its permutation from ``seed + epoch`` only (no global RNG) and
gives rank ``r`` the indices ``perm[r::world_size]``; Lightning calls
``set_epoch`` on it every epoch (single process too) and never replaces it under
DDP. The only addition here is the epoch tag: each index is yielded as
``(epoch, index)`` so :class:`~dbd_lightning.data.samples.TransformedDataset`
can seed that sample's augmentation from ``(seed, epoch, index)``. The random
flip / colour jitter of a sample is then a pure function of those three numbers,
independent of worker count, process count and where a run was resumed.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DistributedSampler


class EpochSeededSampler(DistributedSampler):
    """:class:`DistributedSampler` whose items are ``(epoch, index)`` pairs (see module docstring)."""

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = int(self.epoch)
        return ((epoch, int(i)) for i in super().__iter__())
