"""The bench's results file: written atomically, never over a file the bench did not write.

A results file carries ``"written_by": "dbd_lightning.bench"``; a file from before that mark is
recognised by the bench's own shape (a JSON object with ``commit``, ``time``, ``machine`` and
``cases``). Any other existing file at ``--out`` (a user's notes, another tool's JSON, a folder, a
symbolic link) stops the bench before it runs a case, naming the file and the fix (exit 2). The
file goes through :func:`~dbd_lightning.utils.atomic.write_json` (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..utils.atomic import write_json
from ..utils.errors import UserError

MARKER = "dbd_lightning.bench"
_SHAPE = {"commit", "time", "machine", "cases"}


class BenchOutputError(UserError, FileExistsError):
    """``--out`` names a file the bench did not write."""


def written_by_bench(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (data.get("written_by") == MARKER or _SHAPE <= set(data))


def refuse_foreign(out: str | Path) -> Path:
    """Stop when ``out`` exists and is not a bench results file."""
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not written_by_bench(out):
        raise BenchOutputError(f"--out {out} exists and is not a results file of dbd_lightning.bench; the bench never "
                               "overwrites files it did not write: choose another --out, or move that file away")
    return out


def write_results(out: str | Path, results: dict) -> Path:
    """``results`` (with the bench's mark) at ``out``, atomically; ``out`` is checked again first."""
    return write_json(refuse_foreign(out), {"written_by": MARKER, **results})
