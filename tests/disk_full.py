"""A simulated full disk for tests: files opened for writing under a folder get only ``free`` more bytes.

Like a real full disk, the bytes up to the limit reach the file, then the write raises
``OSError(ENOSPC)``. It patches ``open`` (``builtins.open`` and ``io.open``, which
``pathlib`` uses), so it hits every Python-level writer: ``np.save``, PIL, ``torch.save``
into a file object, ``json`` / ``write_text``. Reads and files outside the folder are untouched.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path


class _LimitedFile:
    """A file opened for writing whose writes share the disk's remaining space."""

    def __init__(self, raw, disk: FullDisk, path: Path):
        self._raw, self._disk, self._path = raw, disk, path

    def write(self, data):
        text = isinstance(data, str)
        view = data if text else memoryview(data).cast("B")
        size = len(data.encode()) if text else len(view)
        if size > self._disk.free:
            self._raw.write(view[: self._disk.free])  # a prefix (for text: at most that many characters)
            self._raw.flush()
            self._disk.free = 0
            self._disk.hits.append(self._path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._path))
        self._disk.free -= size
        return self._raw.write(data)

    def fileno(self):  # a real descriptor would let C code bypass the limit
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._raw.close()

    def __iter__(self):
        return iter(self._raw)


class FullDisk:
    """``FullDisk(monkeypatch, root, free)``: under ``root`` only ``free`` more bytes can be written.

    ``when``: the disk has room until a file for which ``when(path)`` is true is
    opened for writing; that file gets ``free`` bytes, and from then on the disk is
    full (``once=True``: only that file fails, the space comes back after it).
    """

    def __init__(self, monkeypatch, root: Path, free: int = 0, when=None, once: bool = False):
        self.root, self.free, self.hits = Path(root).resolve(), int(free), []
        armed, real_open = when is None, builtins.open

        def limited_open(file, mode="r", *args, **kwargs):
            nonlocal armed
            raw = real_open(file, mode, *args, **kwargs)
            if isinstance(file, int) or not any(c in mode for c in "wax+"):
                return raw
            path = Path(os.fspath(file)).resolve()
            if path != self.root and self.root not in path.parents:
                return raw
            if not armed and not when(path):
                return raw
            if once and self.hits:
                return raw
            armed = True
            return _LimitedFile(raw, self, path)

        monkeypatch.setattr(builtins, "open", limited_open)
        monkeypatch.setattr(io, "open", limited_open)


def partial_files(root: Path) -> list[str]:
    """Temporary / partial files left anywhere under ``root`` (hidden names, ``.tmp``, ``.partial-``)."""
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*")
                  if p.is_file() and (p.name.startswith(".") or p.name.endswith(".tmp") or ".partial-" in p.name))
