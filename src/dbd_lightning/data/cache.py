"""Keep raw samples in memory after their first read (small sets, ``num_workers=0``)."""

from __future__ import annotations

from torch.utils.data import Dataset


class InMemoryCache(Dataset):
    """Wraps a raw-sample dataset; sample ``i`` is produced once, then served from memory.

    Useful for the synthetic renderer on a CPU: the first epoch renders, later
    epochs only augment. Each DataLoader worker would hold its own copy, so use
    it with ``num_workers=0`` (the datamodule warns otherwise).
    """

    def __init__(self, base: Dataset) -> None:
        self.base = base
        self._store: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        if index not in self._store:
            self._store[index] = self.base[index]
        return self._store[index]
