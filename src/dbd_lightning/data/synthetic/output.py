"""synth's output folder: it replaces or deletes only files it wrote itself.

A folder is synth's only by its ``meta.json`` (``"generator": "dbd_lightning.synth"``
and ``"names"``): the files synth wrote there are ``<sub>/<name><suffix>`` for
every listed name and layout sub-folder, plus ``meta.json`` and ``info.jsonl``.

* empty or new folder: written;
* a folder synth did not write (any file, no synth ``meta.json``): refused, with or
  without ``overwrite=true`` (a user's dataset is never touched);
* synth's folder, ``overwrite=true``: exactly the listed files are removed (a user's
  extra file is kept, and so is a sub-folder that still holds one);
* synth's unfinished folder (``"complete": false``, written before the first sample)
  of the same request: the same command resumes it, no ``overwrite`` needed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ...utils.errors import UserError

GENERATOR = "dbd_lightning.synth"
META, INFO = "meta.json", "info.jsonl"
#: the meta.json keys that identify a request (the same command gives the same values)
REQUEST_KEYS = ("config", "seed", "n", "start")


class SynthOutputError(UserError, FileExistsError):
    """``out=`` holds files synth did not write, or its own dataset without ``overwrite=true``."""


def read_meta(out: Path) -> dict | None:
    """``out/meta.json`` when synth wrote it (generator marker and a name list), else ``None``."""
    try:
        meta = json.loads((out / META).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("generator") != GENERATOR or not isinstance(meta.get("names"), list):
        return None
    return meta


def sample_files(out: Path, names: Iterable[str], layout: Mapping[str, str]) -> list[Path]:
    """Every sample file of ``names`` in the ``layout`` (sub-folder -> suffix)."""
    return [out / sub / f"{name}{suffix}" for name in names for sub, suffix in layout.items()]


def written_files(out: Path, meta: dict, layout: Mapping[str, str]) -> list[Path]:
    """The files a synth ``meta`` says synth wrote in ``out`` (its samples, ``info.jsonl``, ``meta.json``)."""
    names = [str(n) for n in meta["names"] if isinstance(n, str) and "/" not in n and "\\" not in n]
    return [*sample_files(out, names, layout), out / INFO, out / META]


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value))


def same_request(meta: dict, request: Mapping[str, Any]) -> bool:
    return all(_normal(meta.get(k)) == _normal(request.get(k)) for k in REQUEST_KEYS)


def prepare(out: Path, overwrite: bool, request: Mapping[str, Any], names: list[str],
            layout: Mapping[str, str]) -> list[Path]:
    """Make ``out`` ready for ``names``; returns the files there that synth did not write (kept).

    Refuses (before deleting or writing anything) a folder synth did not write, synth's
    folder without ``overwrite=true`` (unless it is the same request, unfinished), and a
    target that is a file synth did not write.
    """
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return []
    meta = read_meta(out)
    if meta is None or (out / META).is_symlink():
        raise SynthOutputError(
            f"{out} is not empty and was not written by dbd_lightning.synth (it has no meta.json of synth); "
            "synth never overwrites or deletes files it did not write, overwrite=true included: choose a new "
            "or empty out= folder")
    resume = meta.get("complete") is False and same_request(meta, request)
    if not overwrite and not resume:
        raise SynthOutputError(
            f"{out} holds a synthetic dataset written by synth (its meta.json); pass overwrite=true to "
            "replace the files synth wrote there (other files are kept), or choose another out= folder")
    own = {p for p in written_files(out, meta, layout)}
    targets = [*sample_files(out, names, layout), out / INFO, out / META]
    foreign = [p for p in targets if (p.exists() or p.is_symlink()) and (p not in own or not p.is_file()
                                                                        or p.is_symlink())]
    if foreign:
        shown = "\n".join(f"  {p}" for p in foreign[:10])
        raise SynthOutputError(
            f"{out} holds {len(foreign)} file(s) at paths synth would write that synth did not write:\n{shown}\n"
            "synth never overwrites them: choose another out= folder, or move them away")
    if not resume:
        for path in sorted(own - {out / META}) + [out / META]:  # meta.json last: the record goes when all did
            if path.is_file() and not path.is_symlink():
                path.unlink()
        for sub in layout:
            with contextlib.suppress(OSError):  # only when empty: a user's file keeps its folder
                (out / sub).rmdir()
    return sorted(p for p in out.rglob("*") if p.is_file() and p not in own)
