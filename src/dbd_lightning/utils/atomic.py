"""Atomic file writes, shared by every command that writes outputs (predict, export, synth, reports, checkpoints).

A file is written to a hidden temporary file in the destination folder
(``.<name>.partial-<pid>-<random>``), flushed and fsynced, then renamed over
the destination with ``os.replace`` (atomic within one filesystem), and the
folder is fsynced. A reader, a crash or a full disk therefore sees either the
old complete file or the new complete file, never a truncated one; on any
error the temporary file is removed.

A full disk (``ENOSPC``, or ``EDQUOT``: a quota) becomes :class:`DiskFullError`,
a user error (exit 2, one line): *disk full while writing <file>: free space
and rerun the same command; finished files are kept*. Libraries that wrap the
write error in their own exception (``torch.save``'s zip writer raises a
``RuntimeError``) are recognised too: the file object handed to the writer
records the ``OSError`` it saw.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import UserError

PARTIAL_TAG = ".partial-"
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(UserError, OSError):
    """The disk (or the user's quota) filled up while a file was written; nothing half-written is left."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"disk full while writing {path}: free space and rerun the same command; "
                         "finished files are kept")
        self.errno = errno.ENOSPC
        self.path = str(path)


def is_disk_full(exc: BaseException | None) -> bool:
    """``exc`` or an exception it was raised from / during is an ``OSError`` with ``ENOSPC`` / ``EDQUOT``."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, DiskFullError) or (isinstance(exc, OSError) and exc.errno in _FULL):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def temp_path(path: Path, keep_suffix: bool = False) -> Path:
    """A unique hidden temporary name next to ``path`` (with ``path``'s suffix for writers that need it)."""
    tail = path.suffix if keep_suffix else ""
    return path.parent / f".{path.name}{PARTIAL_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}{tail}"


def ensure_dir(folder: str | Path) -> Path:
    """``mkdir -p folder``; a full disk raises :class:`DiskFullError` naming the folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in _FULL:
            raise DiskFullError(folder) from exc
        raise
    return folder


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some filesystems refuse to open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to (for writers that need a file name).

    On leaving the block the temporary file is fsynced and renamed onto ``path``;
    on an error it is removed, and a full disk raises :class:`DiskFullError`.
    """
    path = Path(path)
    tmp = temp_path(path, keep_suffix)
    ensure_dir(path.parent)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(path) from exc
        raise
    fsync_dir(path.parent)


class _Sink:
    """A write-only file object over the temporary file that remembers a full-disk error it passed on.

    It has no ``fileno``: writers (PIL, NumPy) then write through :meth:`write`,
    so every byte goes through here and a full disk is always seen.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.full = False

    def write(self, data) -> int:
        try:
            return self.raw.write(data)
        except OSError as exc:
            self.full = self.full or exc.errno in _FULL
            raise

    def flush(self) -> None:
        self.raw.flush()

    def tell(self) -> int:
        return self.raw.tell()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self.raw.closed


def write_atomic(path: str | Path, write: Callable[[Any], object]) -> Path:
    """Call ``write(file)`` with a binary file object and put its bytes at ``path`` atomically."""
    path = Path(path)
    with atomic_path(path, keep_suffix=False) as tmp:
        sink = _Sink(open(tmp, "wb"))  # noqa: SIM115 (closed below)
        try:
            write(sink)
            sink.raw.flush()
        except BaseException as exc:
            if sink.full:
                raise DiskFullError(path) from exc
            raise
        finally:
            try:
                sink.raw.close()
            except OSError as exc:  # a buffered write that fails on close
                if exc.errno in _FULL:
                    raise DiskFullError(path) from exc
                raise
    return path


def write_bytes(path: str | Path, data: bytes | bytearray | memoryview) -> Path:
    """``data`` at ``path``, atomically."""
    return write_atomic(path, lambda f: f.write(data))


def write_text(path: str | Path, text: str) -> Path:
    """UTF-8 ``text`` at ``path``, atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """``obj`` as JSON (with a final newline) at ``path``, atomically."""
    return write_text(path, json.dumps(obj, indent=indent) + "\n")
