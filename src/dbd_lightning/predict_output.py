"""predict's output folder: it never overwrites a file it did not write.

An output folder is recognised as predict's own only by its own earlier
``report.json``: predict writes ``"written_by": "dbd_lightning.predict"`` and
the list of every file it wrote (``"files"``, relative to the folder). A later
run into the same folder may replace exactly those files; any other existing
file at a path predict would write (a user's ``focus/a.png``, ``overlay/b.png``,
a ``report.json`` that is not predict's, a symbolic link) stops the run before
anything is written, with the list of files and the fix (exit 2).

Also refused up front: ``output=`` naming an existing file, and an output
folder that cannot be written (read-only, no permission).

Every file is written atomically (:mod:`dbd_lightning.utils.atomic`), and a run
announces its files in ``report.json`` before writing them
(:mod:`dbd_lightning.predict_record`): a run stopped by a full disk (or Ctrl-C)
leaves no half-written file, and its rerun replaces the files it wrote.
Several runs into one folder merge their records.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .predict_record import MARKER, REPORT, locked, merged, new_run_id, owned_files, read_record, run_started
from .utils import preflight
from .utils.atomic import ensure_dir, write_json
from .utils.errors import UserError

__all__ = ["MARKER", "REPORT", "OutputFolder", "PredictOutputError", "is_within", "own_output_folders",
           "read_own_report"]


class PredictOutputError(UserError, ValueError):
    """``output=`` cannot be used without overwriting or losing something."""


def read_own_report(report: Path) -> set[str] | None:
    """The files earlier predict runs recorded in ``report`` (relative POSIX paths, finished and announced);
    ``None`` if it is not predict's."""
    return owned_files(read_record(report))


def check_writable(folder: Path) -> None:
    """Probe ``folder`` (or its nearest existing parent) for writing, creating nothing (the preflight probe)."""
    try:
        preflight.check_writable(folder, role="output folder", create=False)
    except preflight.OutputDirError as exc:
        raise PredictOutputError(f"cannot write to the output folder {folder} ({exc}); "
                                 "choose a writable output= folder") from None


class OutputFolder:
    """The output folder of one predict run: which files it may write, and the record of those it wrote."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out).expanduser()
        if self.out.exists() and not self.out.is_dir():
            raise PredictOutputError(
                f"output={self.out} is an existing file, not a folder; predict writes a folder (focus/, "
                "overlay/, report.json): choose a folder name that does not exist yet (or an earlier predict "
                "output folder)")
        self.owned: set[str] = self._read_owned()
        self.written: set[str] = set()
        self.announced: set[str] = set()
        self.run_id = new_run_id()
        check_writable(self.out)

    def _read_owned(self) -> set[str]:
        """The files predict's ``report.json`` claims (empty when there is none); refuses a foreign one."""
        report = self.out / REPORT
        owned = read_own_report(report) if report.exists() or report.is_symlink() else set()
        if owned is None or report.is_symlink():
            raise PredictOutputError(
                f"{report} exists but was not written by dbd_lightning.predict (it has no "
                f'"written_by": "{MARKER}" file list), so {self.out} is not an earlier predict output folder; '
                "predict never overwrites files it did not write: choose another output= folder, or move that "
                "file away")
        return owned

    def rel(self, path: Path) -> str:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(self.out)).as_posix()

    def is_free(self, path: Path) -> bool:
        """True when ``path`` does not exist or is a regular file that predict wrote earlier (or in this run)."""
        if path.is_symlink():
            return False
        if not path.exists():
            return True
        key = self.rel(path)
        return path.is_file() and (key in self.owned or key in self.written)

    def conflicts(self, paths: Iterable[Path]) -> list[Path]:
        return [p for p in paths if not self.is_free(p)]

    def refuse_conflicts(self, paths: Iterable[Path]) -> None:
        """Stop before anything is written when any of ``paths`` is a file predict did not write."""
        paths = list(paths)
        bad = self.conflicts(paths)
        if bad and (self.out / REPORT).is_file():  # another predict into this folder may have written them
            self.owned |= owned_files(read_record(self.out / REPORT)) or set()
            bad = self.conflicts(paths)
        if bad:
            shown = "\n".join(f"  {p}" for p in bad[:10])
            more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise PredictOutputError(
                f"output={self.out} already holds {len(bad)} file(s) that predict did not write and would "
                f"overwrite:\n{shown}{more}\npredict only replaces the files listed in its own "
                f"{REPORT}; choose another (new or empty) output= folder, or move these files away")

    def claim(self, path: Path) -> Path:
        """Make ``path`` ready to be written (refuses a file predict did not write) and record it."""
        if not self.is_free(path):
            raise PredictOutputError(f"{path} exists and was not written by predict: not overwritten")
        ensure_dir(path.parent)
        self.written.add(self.rel(path))
        return path

    def announce(self, paths: Iterable[Path], report: dict) -> None:
        """Record ``paths`` in ``report.json`` as this run's before any of them is written.

        Only free paths are announced (never a user's file); already announced ones
        are skipped, so the record is rewritten only when something new is announced.
        """
        new = {self.rel(p) for p in paths if self.is_free(p)} - self.announced
        if new:
            self.announced |= new
            self._update(report, finished=False)

    def write_report(self, report: dict) -> Path:
        """The final ``report.json``: the marker and every file predict owns in the folder (earlier and
        concurrent runs' included, merged under the folder lock); this run's announcement is settled."""
        self.close()
        return self._update(report, finished=True)

    def close(self) -> None:
        """This run has ended: a later run (even in this process) settles its announcement."""
        run_started(self.run_id, running=False)

    def _update(self, report: dict, finished: bool) -> Path:
        path = self.out / REPORT
        ensure_dir(self.out)
        with locked(self.out):
            disk = read_record(path) if path.exists() else None
            if (path.exists() or path.is_symlink()) and (disk is None or path.is_symlink()):
                raise PredictOutputError(f"{path} was replaced by a file predict did not write while predict "
                                         "ran; it is not overwritten: move it away and rerun")
            files, pending = merged(self.out, disk, self.owned | self.written, self.run_id, self.announced,
                                    finished)
            data = {"written_by": MARKER, **report, "files": files}
            if not finished:
                data["status"] = "running"
            if pending:
                data["pending"] = pending
            write_json(path, data)
        return path


def is_within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies below it (symlinks resolved)."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def own_output_folders(out: Path, source: Path) -> list[Path]:
    """Folders holding outputs of earlier predict runs (recognised by their own report), never inputs.

    ``out`` inside the input folder (not equal): all of it. Otherwise the top-level
    folders of the files ``out``'s own report lists, and the folders of other
    predict reports below the input folder.
    """
    if source.is_dir() and out.resolve() != source.resolve() and is_within(out, source):
        return [out]
    folders: list[Path] = []
    reports = [out / REPORT]
    if source.is_dir():
        reports += [r for r in source.rglob(REPORT) if r.parent.resolve() != out.resolve()]
    for report in reports:
        owned = read_own_report(report) if report.is_file() else None
        if owned is None:
            continue
        if report.parent.resolve() != out.resolve():
            folders.append(report.parent)
        else:
            folders += sorted({out / Path(f).parts[0] for f in owned if len(Path(f).parts) > 1})
    return folders
