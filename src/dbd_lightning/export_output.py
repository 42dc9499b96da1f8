"""export's output folder: it never overwrites a file it did not write (the rule predict follows).

A folder is recognised as export's own only by its ``export.json``: export writes
``"written_by": "dbd_lightning.export"`` and ``"written_files"`` (the names of
every file it wrote there). A later export into that folder may replace exactly
those; any other existing file at a path export would write (a user's
``model.onnx``, a ``export.json`` that is not export's, a symbolic link) stops the
run before anything is written, naming the files and the fix (exit 2).

The files are announced in ``export.json`` before they are written, so an export
stopped halfway (a full disk, a failed check) leaves a folder whose rerun may
replace what it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .utils import preflight
from .utils.atomic import write_json
from .utils.errors import UserError

MARKER = "dbd_lightning.export"
MANIFEST = "export.json"


class ExportOutputError(UserError, ValueError):
    """``output_dir=`` / ``name=`` would overwrite a file export did not write."""


def _owned(manifest: Path) -> set[str] | None:
    """Names export recorded in ``manifest``; ``None`` when the file is not export's."""
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    files = data.get("written_files") if isinstance(data, dict) else None
    if data.get("written_by") != MARKER or not isinstance(files, list):
        return None
    return {str(f) for f in files if isinstance(f, str)}


class ExportFolder:
    """The folder one export writes into: which names it may replace, and the record of them."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ExportOutputError(f"output_dir={self.out} is an existing file, not a folder; choose a folder")
        try:  # probe the folder (or its nearest existing parent) for writing, creating nothing
            preflight.check_writable(self.out, role="output folder", create=False)
        except preflight.OutputDirError as exc:
            raise ExportOutputError(f"output_dir={self.out} cannot be written ({exc}); choose a writable "
                                    "output_dir= folder") from None
        manifest = self.out / MANIFEST
        owned = _owned(manifest) if manifest.exists() and not manifest.is_symlink() else set()
        if owned is None or manifest.is_symlink():
            raise ExportOutputError(
                f"{manifest} exists but was not written by dbd_lightning.export (it has no "
                f'"written_by": "{MARKER}" file list); export never overwrites files it did not write: '
                "choose another output_dir=, or move that file away")
        self.owned = owned

    def _free(self, path: Path) -> bool:
        return not (path.exists() or path.is_symlink()) or (path.is_file() and not path.is_symlink()
                                                             and path.name in self.owned)

    def refuse_foreign(self, targets: Iterable[Path]) -> None:
        """Stop before anything is written when a target exists and export did not write it."""
        bad = [p for p in targets if not self._free(p)]
        if bad:
            shown = "\n".join(f"  {p}" for p in bad)
            raise ExportOutputError(
                f"output_dir={self.out} already holds {len(bad)} file(s) that export did not write and would "
                f"overwrite:\n{shown}\nexport only replaces the files listed in its own {MANIFEST}; choose "
                "another output_dir= (or name=), or delete / move these files yourself")

    def announce(self, targets: Iterable[Path], manifest: dict) -> None:
        """Record the targets in ``export.json`` before writing them (an interrupted export stays export's)."""
        self.owned |= {p.name for p in targets}
        self.write(manifest, status="running")

    def write(self, manifest: dict, status: str | None = None) -> Path:
        """``export.json``: ``manifest`` plus the marker and the names of export's files that exist."""
        files = sorted(n for n in self.owned - {MANIFEST} if (self.out / n).is_file() or status == "running")
        data = {"written_by": MARKER, **manifest, "written_files": files}
        if status:
            data["status"] = status
        return write_json(self.out / MANIFEST, data)
