"""Safe extraction of a downloaded benchmark archive into a staging folder (used by ``prepare``).

Supported: ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``/``.tbz2``, ``.tar.xz``/``.txz``.

The archive is only read. Its contents go to ``<root>/.downloads/<archive stem>/``:
extracted first into a hidden ``.<stem>.partial-*`` folder next to it, which is
renamed to the final name only once every member is out and a marker file
(:data:`MARKER`, recording the archive's name, size, mtime and SHA-256) is
written. A folder at the final name is therefore always complete; it is reused
when the marker matches the archive (same name, size and mtime, or same
SHA-256), and a second import from the same archive extracts nothing.

Before anything is written every member is checked, and the whole archive is
refused (naming the member and why) if one has an absolute path, a ``..``
component, or, in a tar, is a link pointing outside the target or a device /
FIFO (tar members are then extracted with :func:`tarfile.data_filter`). A
corrupt or truncated archive raises :class:`ArchiveError` naming the file, and
its partial folder is removed.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..utils.atomic import write_json
from ..utils.errors import UserError
from ..utils.hashing import file_sha256

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
STAGING_DIR = ".downloads"
MARKER = ".dbd_prepare_extracted.json"
_CHUNK = 1 << 20


class ArchiveError(UserError, RuntimeError):
    """The archive is unsupported, corrupt / truncated, unsafe, or its staging folder conflicts."""


@dataclass(frozen=True)
class Extraction:
    """Where an archive was extracted, whether an earlier extraction was reused, and leftovers seen."""

    archive: Path
    folder: Path
    reused: bool
    leftovers: list[Path] = field(default_factory=list)


def archive_suffix(path: str | Path) -> str | None:
    """The supported archive ending of ``path`` (lower case), or None."""
    name = Path(path).name.lower()
    matches = [s for s in ARCHIVE_SUFFIXES if name.endswith(s)]
    return max(matches, key=len) if matches else None


def archive_stem(path: str | Path) -> str:
    """``path``'s name without its archive ending (``CUHK.tar.gz`` -> ``CUHK``)."""
    path = Path(path)
    suffix = archive_suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.stem
    return stem.strip() or "archive"


def staging_folder(archive: str | Path, root: str | Path) -> Path:
    """The folder ``archive`` is extracted to under the data root ``root``."""
    return Path(root) / STAGING_DIR / archive_stem(archive)


def _member_problem(name: str) -> str | None:
    """Why a member name is unsafe to extract, or None."""
    if not name or "\x00" in name:
        return "empty name or NUL byte in its name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
    if ".." in parts:
        return "'..' in its path (it could escape the target folder)"
    if parts == [MARKER]:
        return f"its name is reserved for prepare's completion marker ({MARKER})"
    return None


def _refuse(archive: Path, member: str, why: str) -> ArchiveError:
    return ArchiveError(f"refusing to extract {archive}: member {member!r}: {why}; nothing was extracted")


def _identity(archive: Path) -> dict:
    st = archive.stat()
    return {"name": archive.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            why = _member_problem(info.filename)
            if why:
                raise _refuse(archive, info.filename, why)
        for info in infos:
            zf.extract(info, dest)  # reads every byte: a bad CRC raises BadZipFile


def _tar_compression(archive: Path) -> str:
    """``gz``, ``bz2``, ``xz`` or ``""`` from the file's first bytes (a browser may have decompressed a
    ``.tar.gz`` without renaming it, or the other way round)."""
    with open(archive, "rb") as f:
        head = f.read(6)
    for magic, kind in ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz")):
        if head.startswith(magic):
            return kind
    return ""


def _extract_tar(archive: Path, dest: Path) -> None:
    if not hasattr(tarfile, "data_filter"):
        raise ArchiveError(f"cannot extract {archive} safely: this Python's tarfile has no extraction filters "
                           "(needs Python 3.10.12+, 3.11.4+ or 3.12+); extract it yourself and pass the folder")
    compression = _tar_compression(archive)
    with tarfile.open(archive, f"r:{compression}") as tar:
        members = tar.getmembers()  # reads every header (and decompresses the stream up to the end marker)
        if not compression:
            # uncompressed: tarfile takes a missing or garbled header after the last member for the end of
            # the archive, so a tar cut at a member boundary would look complete; require the zero block
            tar.fileobj.seek(tar.offset)
            if tar.fileobj.read(tarfile.BLOCKSIZE) != tarfile.NUL * tarfile.BLOCKSIZE:
                after = f" after member {members[-1].name!r}" if members else ""
                raise ArchiveError(f"{archive} is truncated or corrupt: no end-of-archive marker at byte "
                                   f"{tar.offset}{after}")
        for m in members:
            why = _member_problem(m.name)
            if why:
                raise _refuse(archive, m.name, why)
            try:
                tarfile.data_filter(m, str(dest))
            except tarfile.FilterError as exc:
                raise _refuse(archive, m.name, f"{type(exc).__name__}: {exc}") from exc
        tar.extractall(dest, members=members, filter="data")


def _read_marker(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def extract_archive(archive: str | Path, root: str | Path) -> Extraction:
    """Extract ``archive`` to ``<root>/.downloads/<stem>/`` (or reuse a complete earlier extraction)."""
    archive = Path(archive).expanduser().resolve()
    if not archive.is_file():
        raise ArchiveError(f"archive not found: {archive}")
    if archive_suffix(archive) is None:
        raise ArchiveError(f"{archive} is not a supported archive (expected {', '.join(ARCHIVE_SUFFIXES)})")
    final = staging_folder(archive, Path(root).expanduser())
    parent = final.parent
    leftovers = sorted(parent.glob(f".{final.name}.partial-*")) if parent.is_dir() else []
    ident = _identity(archive)
    if final.exists() or final.is_symlink():
        marker = _read_marker(final)
        if marker is None:
            raise ArchiveError(f"{final} exists but is not a complete extraction by prepare (no {MARKER} in it); "
                               f"delete it (or move it away) and run again to extract {archive}")
        if all(marker.get(k) == v for k, v in ident.items()):
            return Extraction(archive, final, True, leftovers)
        if marker.get("size") == ident["size"] and marker.get("sha256") == file_sha256(archive, _CHUNK):
            # same content under another name or mtime (e.g. downloaded again): reuse, remember the new identity
            write_json(final / MARKER, {**marker, **ident, "archive": str(archive)}, indent=1)
            return Extraction(archive, final, True, leftovers)
        raise ArchiveError(f"{final} holds the extraction of a different archive ({marker.get('archive')}, "
                           f"{marker.get('size')} bytes), not of {archive} ({ident['size']} bytes); delete it "
                           "(in symlink mode the imported files point into it) and run again")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=parent))
    try:
        digest = file_sha256(archive, _CHUNK)
        try:
            if archive_suffix(archive) == ".zip":
                _extract_zip(archive, tmp)
            else:
                _extract_tar(archive, tmp)
        except ArchiveError:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError,
                RuntimeError, ValueError) as exc:
            raise ArchiveError(f"cannot extract {archive}: {type(exc).__name__}: {exc}; the archive looks "
                               "corrupt or truncated (download it again)") from exc
        if _identity(archive) != ident:
            raise ArchiveError(f"{archive} changed while it was being extracted; run again once it is complete")
        write_json(tmp / MARKER, {**ident, "sha256": digest, "archive": str(archive)}, indent=1)
        tmp.chmod(0o755)  # mkdtemp makes it private; the imported symlinks point into it
        os.rename(tmp, final)  # atomic: the final name only ever holds a complete extraction
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Extraction(archive, final, False, leftovers)
