"""The datamodule of the real-benchmark configs: DBDDataModule + the layout check before anything runs."""

from __future__ import annotations

from collections.abc import Mapping

from torch.utils.data import Dataset

from ..datamodule import DBDDataModule
from ..layout import enforce


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
        self.layout_report = enforce({"train": train, "val": val, "test": test}, strict=strict, level=check)
        super().__init__(train=train, val=val, test=test, **kwargs)
