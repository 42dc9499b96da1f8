"""The datamodule of the real-benchmark configs (the layout check now runs in every :class:`DBDDataModule`)."""

from __future__ import annotations

from collections.abc import Mapping

from torch.utils.data import Dataset

from ..datamodule import DBDDataModule


class BenchmarkDataModule(DBDDataModule):
    """:class:`DBDDataModule` that checks every dataset's layout when built.

    All problems of all splits are gathered in one report, raised as
    :class:`~dbd_lightning.data.folder.DatasetLayoutError` when ``strict``
    (default) or emitted as a warning otherwise. ``check`` = ``off`` |
    ``headers`` (default) | ``full`` (see :mod:`dbd_lightning.data.layout`).
    """

    def __init__(self, train: Mapping[str, Dataset] | None = None, val: Mapping[str, Dataset] | None = None,
                 test: Mapping[str, Dataset] | None = None, strict: bool = True, check: str = "headers",
                 **kwargs) -> None:
        super().__init__(train=train, val=val, test=test, strict=strict, check=check, **kwargs)
