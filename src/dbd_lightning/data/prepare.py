"""Import a downloaded benchmark (archive or folder) into the canonical layout under the data root.

``python -m dbd_lightning.data.prepare {cuhk,dut,ctcug,ebd,lytro} SRC [--root DEST] [--mode symlink|copy]``

``SRC`` is the downloaded archive (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``,
``.tar.bz2``, ``.tar.xz``) or an extracted folder. An archive is extracted
safely (members with absolute paths, ``..`` or links leaving the target are
refused) into ``DEST/.downloads/<archive stem>/``, via a temporary folder
renamed only when complete, so a corrupt or truncated archive leaves nothing a
later run would trust; a complete extraction of the same archive is reused, not
redone. The import then runs on that folder (symlinks point into it: keep it,
or use ``--mode copy`` to be able to delete it).

Finds the benchmark's folders anywhere up to three levels below the folder
(the layouts the releases come in), then symlinks (default) or copies their
files into ``DEST/<CUHK|DUT|CTCUG|EBD|Lytro>/...``; ``DEST`` defaults to
``$DBD_DATA_ROOT`` or ``./data``. The source (folder or archive) is never
modified. Running it again is a no-op: files already imported (same link
target or same content) are skipped, and a different file already at a
destination is reported, not overwritten. Finally the published counts are
checked (exit status 1 if not).
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import argparse
import filecmp
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..utils.atomic import atomic_path
from ..utils.errors import UserError, handle_user_errors
from .archive import ARCHIVE_SUFFIXES, ArchiveError, archive_suffix, extract_archive
from .benchmarks import CTCUG, CUHK, DUT, EBD, Lytro
from .io import IMAGE_SUFFIXES
from .layout import check_datasets, format_report

MAX_DEPTH = 3


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES


def _is_lytro(p: Path) -> bool:
    name = p.name.lower()
    return (name.startswith("image_") and _is_image(p)) or (name.startswith("map_") and name.endswith(".mat")) \
        or name == "convertion.mat"


@dataclass(frozen=True)
class Part:
    """One canonical folder, the source folder names it may have, and which files it takes."""

    dest: str
    sources: tuple[str, ...]
    keep: Callable[[Path], bool] = _is_image


SPECS: dict[str, tuple[str, tuple[Part, ...], list]] = {
    "cuhk": ("CUHK", (Part("image", ("image", "images", "BlurDatasetImage")), Part("gt", ("gt", "GT", "BlurDatasetGT"))),
             [(CUHK, {"split": "all"})]),
    "dut": ("DUT", (Part("DUT600S_Training", ("DUT600S_Training",)),
                    Part("DUT600GT_Training", ("DUT600GT_Training",)),
                    Part("test/image", ("DUT500S-Testing", "test/image", "image")),
                    Part("test/gt", ("DUT500GT-Testing", "test/gt", "gt"))),
            [(DUT, {"split": "train"}), (DUT, {"split": "test"})]),
    "ctcug": ("CTCUG", (Part("CTCUG_images", ("CTCUG_images",)), Part("CTCUG_gt", ("CTCUG_gt",))),
              [(CTCUG, {})]),
    "ebd": ("EBD", (Part("image", ("image", "images")), Part("gt", ("gt", "GT"))), [(EBD, {"split": "all"})]),
    "lytro": ("Lytro", (Part(".", (".",), _is_lytro),), [(Lytro, {})]),
}


class PrepareError(UserError, RuntimeError):
    """The source does not hold the benchmark, the archive cannot be extracted, or the destination conflicts."""


def _dirs_by_depth(src: Path):
    level = [src]
    for depth in range(MAX_DEPTH + 1):
        yield depth, level
        level = sorted(d for parent in level for d in parent.iterdir() if d.is_dir() and not d.is_symlink())


def find_source(src: Path, part: Part) -> Path | None:
    """The folder under ``src`` holding ``part`` (shallowest match); error if ambiguous."""
    for _, level in _dirs_by_depth(src):
        found = []
        for parent in level:
            for name in part.sources:
                cand = parent / name if name != "." else parent
                if cand.is_dir() and any(part.keep(f) for f in cand.iterdir() if f.is_file()):
                    found.append(cand.resolve())
                    break
        found = sorted(set(found))
        if len(found) > 1:
            raise PrepareError(f"ambiguous source for {part.dest}: {[str(f) for f in found]}; pass the "
                               "benchmark's own folder as SRC")
        if found:
            return found[0]
    return None


def _same(dest: Path, source: Path) -> bool:
    if dest.is_symlink():
        return dest.resolve() == source.resolve()
    return dest.is_file() and filecmp.cmp(dest, source, shallow=False)


def import_files(source: Path, dest: Path, keep: Callable[[Path], bool], mode: str) -> tuple[int, int, list[str]]:
    """Link/copy ``source``'s kept files into ``dest``: (new, already there, conflicts)."""
    dest.mkdir(parents=True, exist_ok=True)
    new = same = 0
    conflicts = []
    for f in sorted(p for p in source.iterdir() if p.is_file() and keep(p)):
        target = dest / f.name
        if target.exists() or target.is_symlink():
            if _same(target, f):
                same += 1
            else:
                conflicts.append(f"{target} exists and differs from {f}")
            continue
        if mode == "symlink":
            target.symlink_to(f.resolve())  # one system call: there is no half-made link
        else:
            with atomic_path(target) as tmp:  # a killed copy leaves no half-copied file (a rerun: "differs")
                shutil.copyfile(f, tmp)
            shutil.copystat(f, target)  # after the rename: a read-only source makes a read-only copy
        new += 1
    return new, same, conflicts


def prepare(dataset: str, src: str | Path, root: str | Path, mode: str = "symlink") -> tuple[int, str]:
    """Import ``dataset`` from ``src`` into ``root``; returns (exit status, report)."""
    if dataset not in SPECS:
        raise PrepareError(f"unknown dataset {dataset!r}; expected one of {list(SPECS)}")
    if mode not in ("symlink", "copy"):
        raise PrepareError(f"mode must be symlink or copy, got {mode!r}")
    src, root = Path(src).expanduser().resolve(), Path(root).expanduser()
    folder, parts, classes = SPECS[dataset]
    bench_root = root / folder
    extracted = ""
    if src.is_file():
        if archive_suffix(src) is None:
            raise PrepareError(f"{src} is a file but not a supported archive (expected a folder or one of "
                               f"{', '.join(ARCHIVE_SUFFIXES)})")
        try:
            extraction = extract_archive(src, root)
        except ArchiveError as exc:
            raise PrepareError(str(exc)) from exc
        extracted = (f" (reusing its extraction in {extraction.folder})" if extraction.reused
                     else f" (extracted to {extraction.folder})")
        extracted += "".join(f"\n  note: {p} is left from an interrupted extraction; safe to delete"
                             for p in extraction.leftovers)
        label, src = src, extraction.folder
    elif src.is_dir():
        if bench_root.resolve() == src or src in bench_root.resolve().parents:
            raise PrepareError(f"destination {bench_root} is inside the source {src}")
        label = src
    else:
        raise PrepareError(f"source folder or archive not found: {src}")
    lines, conflicts, missing = [f"import {dataset} from {label}{extracted} into {bench_root} ({mode})"], [], []
    for part in parts:
        source = find_source(src, part)
        if source is None:
            missing.append(f"{part.dest} (looked for {', '.join(part.sources)} up to {MAX_DEPTH} levels below {src})")
            continue
        new, same, bad = import_files(source, bench_root / part.dest, part.keep, mode)
        conflicts += bad
        lines.append(f"  {part.dest}: {new} new, {same} already there  <- {source}")
    if len(missing) == len(parts):
        raise PrepareError(f"no {dataset} folder found under {src}: " + "; ".join(missing))
    lines += [f"  not found: {m}" for m in missing]
    if conflicts:
        raise PrepareError("\n".join(lines + ["conflicting files (not overwritten):", *conflicts[:20]]))
    sets, note = _sets_to_check(dataset, bench_root, classes)
    lines += [f"  {note}"] if note else []
    issues, summary = check_datasets({"imported": sets}, level="headers")
    found = [i for i in issues if not i.is_note]  # notes (the polarity evidence) are no finding
    return (1 if found or missing else 0), "\n".join(lines) + "\n" + format_report(issues, summary)


def _sets_to_check(dataset: str, bench_root: Path, classes: list) -> tuple[dict, str]:
    """The splits whose published counts the import is checked against, and a note on what was imported.

    CUHK distributed without its 100 TE-1 pairs (a training-only copy, e.g. TR-1 kept apart from a
    withheld test split) is checked as CUHK-TR-1 (604), not reported as 100 pairs short of 704.
    """
    if dataset == "cuhk":
        te1 = CUHK(bench_root, split="te1", optional=True)
        tr1 = CUHK(bench_root, split="tr1")
        if te1.absent and len(tr1.pairs) == CUHK.SPLITS["tr1"]:
            return ({"CUHK tr1": tr1}, f"{len(tr1.pairs)} of CUHK-TR-1; TE-1 absent (train with data=cuhk_tr1: "
                                       "it validates on a held-out part of TR-1 and tests on TE-1 only when present)")
    return {f"{cls.NAME} {kw.get('split', 'all')}": cls(bench_root, **kw) for cls, kw in classes}, ""


@handle_user_errors(log_file=False)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dbd_lightning.data.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(SPECS))
    parser.add_argument("src", help="the downloaded archive (" + ", ".join(ARCHIVE_SUFFIXES) + ") or extracted "
                        "folder; an archive is extracted to ROOT/.downloads/<archive stem>/ (reused when complete)")
    parser.add_argument("--root", default=os.environ.get("DBD_DATA_ROOT", "data"),
                        help="data root to import into (default: $DBD_DATA_ROOT or ./data)")
    parser.add_argument("--mode", choices=("symlink", "copy"), default="symlink")
    args = parser.parse_args(argv)
    try:
        code, report = prepare(args.dataset, args.src, args.root, args.mode)
    except PrepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
