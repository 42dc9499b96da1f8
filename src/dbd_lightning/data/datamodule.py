"""One LightningDataModule for every DBD split: named train/val/test dataset dicts."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping

import lightning as L
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from ..ops.cpu_memory import reuse_freed_memory_in_worker
from ..utils import key_checks as kc
from .cache import InMemoryCache
from .layout import enforce, warn_shared_splits
from .sampler import EpochSeededSampler
from .samples import TransformedDataset, collate_samples

log = logging.getLogger(__name__)


class DBDDataModule(L.LightningDataModule):
    """Datasets come from config (Hydra-instantiated raw-sample datasets).

    ``train`` sets are concatenated (combined splits such as CUHK-TR-1 + DUT-TR);
    every ``val``/``test`` set gets its own dataloader and its own metrics,
    logged as ``val/<name>/<metric>`` and ``test/<name>/<metric>``.
    ``cache=True`` keeps raw samples in memory after their first read.

    Training order and augmentation are deterministic: a permutation drawn from
    ``seed + epoch`` (``seed=None``: Lightning's ``PL_GLOBAL_SEED``, i.e. the run's
    ``seed``), sharded across DDP ranks, each sample augmented from
    ``(seed, epoch, index)`` (:mod:`dbd_lightning.data.sampler`). A resumed or a
    multi-process run therefore sees exactly the batches of an uninterrupted one.

    Every dataset with a ``layout_issues`` method (folders of files) is checked
    when the datamodule is built, before any model exists
    (:func:`~dbd_lightning.data.layout.enforce`): errors (unreadable or truncated
    files, size mismatches, duplicate stems, ...) raise
    :class:`~dbd_lightning.data.folder.DatasetLayoutError` with one report when
    ``strict`` (GTs that cannot be read as masks included); grey GTs, an inverted
    GT polarity and validation / test sets that reuse training images
    (``data=folder`` without ``val_root`` / ``test_root``: said when fitting
    starts) are warnings; the polarity verdict's evidence alone is only logged.
    ``check`` = ``off`` | ``headers`` (default) | ``full``.
    """

    #: the config arguments train checks before the run (:func:`dbd_lightning.utils.validate.check_data_args`)
    ARG_CHECKS = {"cache": kc.flag(), "pin_memory": kc.flag(), "drop_last": kc.flag(), "strict": kc.flag()}

    def __init__(
        self,
        train: Mapping[str, Dataset] | None = None,
        val: Mapping[str, Dataset] | None = None,
        test: Mapping[str, Dataset] | None = None,
        train_transform: Callable | None = None,
        eval_transform: Callable | None = None,
        batch_size: int = 6,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        drop_last: bool = True,
        cache: bool = False,
        seed: int | None = None,
        strict: bool = True,
        check: str = "headers",
    ) -> None:
        super().__init__()
        train, val, test = (self._drop_absent(split, sets) for split, sets in
                            (("train", train), ("val", val), ("test", test)))
        self._raw_splits = {split: {k: d for k, d in (sets or {}).items() if d is not None}
                            for split, sets in (("train", train), ("val", val), ("test", test))}
        self.layout_report = enforce(self._raw_splits, strict=strict, level=check)
        self.seed = seed
        if cache and num_workers > 0:
            warnings.warn("data.cache=true keeps one copy per DataLoader worker; use num_workers=0 with it",
                          stacklevel=2)
        wrap = InMemoryCache if cache else (lambda d: d)
        self.train_sets = {k: wrap(d) for k, d in (train or {}).items() if d is not None}
        self.val_sets = {k: wrap(d) for k, d in (val or {}).items() if d is not None}
        self.test_sets = {k: wrap(d) for k, d in (test or {}).items() if d is not None}
        for split, sets, tf in (("train", self.train_sets, train_transform), ("val", self.val_sets, eval_transform),
                                ("test", self.test_sets, eval_transform)):
            if sets and tf is None:
                raise ValueError(f"data: {split} datasets given but no {'train' if split == 'train' else 'eval'}_transform")
        self.train_transform, self.eval_transform = train_transform, eval_transform
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory, self.drop_last = num_workers, pin_memory, drop_last

    @staticmethod
    def _drop_absent(split: str, sets: Mapping[str, Dataset] | None) -> dict[str, Dataset]:
        """Leave out optional sets that are not on disk (``absent``: e.g. CUHK-TE-1 withheld), saying so once."""
        kept = {}
        for name, d in (sets or {}).items():
            if getattr(d, "absent", False):
                text = f"data: {split} set {name!r} is not on disk ({d.describe()}); it is left out of this run"
                log.warning(text)
                print(text, flush=True)
            else:
                kept[name] = d
        return kept

    def setup(self, stage: str | None = None) -> None:
        if stage == "fit":
            warn_shared_splits(self._raw_splits)

    @property
    def val_names(self) -> list[str]:
        return list(self.val_sets)

    @property
    def test_names(self) -> list[str]:
        return list(self.test_sets)

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, drop_last: bool,
                sampler=None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=reuse_freed_memory_in_worker if self.num_workers > 0 else None,
            collate_fn=collate_samples,
        )

    def train_dataloader(self) -> DataLoader:
        if not self.train_sets:
            raise ValueError("data: no training datasets configured (data.train is empty)")
        raw = list(self.train_sets.values())
        seed = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        dataset = TransformedDataset(raw[0] if len(raw) == 1 else ConcatDataset(raw), self.train_transform,
                                     seed=seed)
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        sampler = EpochSeededSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        drop = self.drop_last and len(sampler) > self.batch_size
        return self._loader(dataset, self.batch_size, shuffle=False, drop_last=drop, sampler=sampler)

    def _eval_loaders(self, sets: Mapping[str, Dataset]) -> list[DataLoader]:
        return [
            self._loader(TransformedDataset(d, self.eval_transform, keep_full_gt=True), self.eval_batch_size,
                         shuffle=False, drop_last=False)
            for d in sets.values()
        ]

    def val_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders(self.val_sets)

    def test_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders(self.test_sets)

    def predict_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders(self.test_sets)
