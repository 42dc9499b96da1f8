"""predict's ``report.json`` as the record of which files in an output folder predict wrote.

``"files"`` lists the files predict finished writing; ``"pending"`` maps a running
(or stopped) run to the files it announced before writing them. A run announces its
targets *before* it writes the first byte, so an interrupted run (full disk, Ctrl-C,
a kill) still leaves a record that lets the rerun replace its files instead of
refusing them as foreign. Both lists count as predict's own.

Several predict runs may write into one folder at once: every update of the record
re-reads it under an exclusive lock on the folder and merges it, so no run's files
are lost from the record. When a run finishes, its announced files that exist join
``"files"`` and its ``"pending"`` entry is removed; the entries of runs that ended
without finishing (their process is gone) are settled the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no folder lock, the merge alone
    fcntl = None

MARKER = "dbd_lightning.predict"
REPORT = "report.json"

#: run ids of this process's runs that are still going (a run of this process not in it has stopped)
_RUNNING: set[str] = set()


def read_record(report: Path) -> dict | None:
    """The parsed ``report`` when predict wrote it (marker and file list), else ``None``."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("written_by") != MARKER or not isinstance(data.get("files"), list):
        return None
    return data


def _strings(items) -> set[str]:
    return {str(f) for f in items if isinstance(f, str)} if isinstance(items, list) else set()


def pending_of(data: dict | None) -> dict[str, set[str]]:
    """``run id -> announced files`` of a record (empty for records of older versions)."""
    pending = (data or {}).get("pending")
    return {str(k): _strings(v) for k, v in pending.items()} if isinstance(pending, dict) else {}


def owned_files(data: dict | None) -> set[str] | None:
    """Every file a record claims for predict (finished and announced); ``None`` for no record."""
    if data is None:
        return None
    return _strings(data["files"]).union(*pending_of(data).values())


def new_run_id() -> str:
    """``host:pid:token``: unique per run, and tells whether the run's process is still there."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_started(run_id: str, running: bool = True) -> None:
    """This process's run ``run_id`` announced its files (``running=False``: it ended, or stopped on an error)."""
    (_RUNNING.add if running else _RUNNING.discard)(run_id)


def run_alive(run_id: str) -> bool:
    """False only when the run is known to have ended: a run of this process that stopped, or a
    run whose process is gone (same host, no such pid)."""
    host, _, rest = run_id.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return run_id in _RUNNING
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (an existing folder; ``flock`` on its descriptor, no lock file)."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def merged(out: Path, disk: dict | None, mine: Iterable[str], run_id: str,
           announced: set[str], finished: bool) -> tuple[list[str], dict[str, list[str]]]:
    """``(files, pending)`` of the record: ``disk``'s merged with this run's files.

    ``mine``: the files this run owns or wrote; ``announced``: what it announced
    (kept as pending while it runs, dropped when ``finished``: what it wrote is in
    ``mine``). Only files that exist are listed as finished; the entries of runs
    whose process is gone are settled (their existing files join ``"files"``).
    """
    files = _strings((disk or {}).get("files")) | set(mine)
    pending = pending_of(disk)
    pending.pop(run_id, None)
    for other in [k for k in pending if not run_alive(k)]:
        files |= pending.pop(other)
    if not finished:
        pending[run_id] = set(announced)
        run_started(run_id)
    done = sorted(f for f in files - {REPORT} if (out / f).is_file() and not (out / f).is_symlink())
    return done, {k: sorted(v) for k, v in sorted(pending.items()) if v}
