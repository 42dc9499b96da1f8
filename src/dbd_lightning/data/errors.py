"""The data errors that both the dataset folders (:mod:`.folder`) and the layout checks (:mod:`.layout`) raise."""

from __future__ import annotations

from ..utils.errors import UserError


class DatasetLayoutError(UserError, RuntimeError):
    """The files on disk do not form the expected dataset layout."""


class DataConfigError(UserError, ValueError):
    """A data config value that cannot be used (names the key)."""
