"""Layout check of on-disk datasets: one report that lists every problem found, before anything is built.

A dataset that supports the check has a ``layout_issues(level)`` method that
returns :class:`LayoutIssue` objects (missing folders, counts that differ from
the published ones, unpaired files, duplicate stems, unreadable or truncated
files, image/GT size mismatches, split-list entries not on disk, GTs that
cannot be read as masks, GTs that are not binary, GTs whose polarity looks
inverted, and the evidence behind the polarity verdict). :func:`check_datasets`
gathers them over all the datasets of a data config (and notes validation / test
sets that reuse training images) and formats one report; :func:`enforce` raises the
errors (``strict``) or warns, and always warns about the warnings.

Levels: ``headers`` (default) opens every file's header (format, size, EXIF
orientation) and reads its last bytes (a JPEG must end with EOI, a PNG with
IEND: a truncated file is then decoded to confirm), and checks a sample of
:data:`CONTENT_SAMPLE` pairs for grey GTs and GT polarity (see
:mod:`dbd_lightning.data.content`): fast on EBD's 1605 images. ``full`` also
decodes every pixel and checks every pair's content; ``off`` only checks
folders, pairing and counts.

Errors (a run would crash or silently use wrong data), warnings (the data
is usable but probably not what was meant: kinds in :data:`WARNING_KINDS`) and
notes (what the check found without finding a problem: :data:`NOTE_KINDS`,
printed in the report, never a warning of their own).
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from . import content
from .errors import DataConfigError, DatasetLayoutError
from .masks import MaskContentError
from .polarity import FocusCue, PolarityVerdict

log = logging.getLogger(__name__)

LEVELS = ("off", "headers", "full")
#: pairs checked for grey GTs / polarity at the ``headers`` level (evenly spread; ``full`` checks all)
CONTENT_SAMPLE = 12
#: issue kinds that are warnings (the data loads; the user should look), every other kind is an error
WARNING_KINDS = ("grey_gt", "polarity", "shared_split")
#: issue kinds that are notes: said in the report, neither an error nor a warning
NOTE_KINDS = ("polarity_evidence",)
#: GT files named per content issue (the rest are counted)
_LISTED = 10
_EXIF_ORIENTATION = 0x0112
_FIXES = {
    "unreadable": "re-export or re-download the file, or remove it together with its GT / image",
    "size_mismatch": "re-export the GT at the image's size (nearest-neighbour resize), or remove the pair",
    "duplicate": "keep one file per stem (rename or remove the other one)",
    "unpaired": "add the missing files or remove the unpaired ones",
    "mask_content": ("save each GT as a grey image with its two classes black and white (a 0/1 label map "
                     "times 255; colour and transparency removed), data.polarity saying which is in focus"),
    "grey_gt": "binarise the GTs yourself if the default threshold (half range) is not what you want",
    "polarity": "set data.polarity=white_blurred (or white_in_focus) to match the GT files",
    "shared_split": "give held-out folders (data=folder: data.val_root=DIR data.test_root=DIR)",
}


class TruncatedFileError(OSError):
    """An image file cut short (found by its missing end marker, confirmed by decoding)."""


@dataclass(frozen=True)
class LayoutIssue:
    """One problem: which dataset, what kind, and a message naming the files."""

    dataset: str
    # missing_folder | missing_file | count | unpaired | duplicate | unreadable | size_mismatch | split_list
    # | mask_content | grey_gt | polarity | shared_split | polarity_evidence (a note)
    kind: str
    message: str

    @property
    def is_warning(self) -> bool:
        """Not an error: a warning or a note."""
        return self.kind in WARNING_KINDS or self.is_note

    @property
    def is_note(self) -> bool:
        return self.kind in NOTE_KINDS

    def __str__(self) -> str:
        return f"[{self.dataset}] {self.kind}: {self.message}"


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise DataConfigError(f"unknown layout check level {level!r} (data.check); expected one of {LEVELS}")
    return level


def probe_image(path: Path, decode: bool = False) -> tuple[int, int]:
    """(height, width) of an image file as the loaders see it (after EXIF orientation).

    Raises ``OSError``/``ValueError`` when the file cannot be read. Without
    ``decode`` only the header is read, plus the file's end: a JPEG / PNG cut
    short (no EOI / IEND) is then decoded to confirm that it is broken.
    """
    with Image.open(path) as img:
        if decode:
            img.load()
        width, height = img.size
        # a PNG's getexif() decodes the whole image unless its eXIf chunk came before the pixels
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1) if decode or img.format != "PNG" or \
            "exif" in img.info else 1
    if not decode:
        problem = content.truncation_problem(path)
        if problem:
            raise TruncatedFileError(problem)
    if orientation in (5, 6, 7, 8):  # transposed by ImageOps.exif_transpose in io.py
        width, height = height, width
    return height, width


def grey_fraction(path: Path) -> float:
    """Fraction of pixels of a mask file that are neither near-black nor near-white."""
    return content.grey_fraction(path)


def _content_issues(dataset: str, pairs: list[tuple[Path, Path]], polarity: str | None,
                    level: str, notes: bool = False) -> list[LayoutIssue]:
    """GTs that cannot be read as masks, grey GTs and the GT polarity verdict over a sample of the (readable)
    pairs (all of them at ``full``); ``notes``: also the verdict when it is not a warning."""
    if not pairs:
        return []
    chosen = [pairs[i] for i in content.sample_indices(len(pairs), len(pairs) if level == "full" else CONTENT_SAMPLE)]
    issues: list[LayoutIssue] = []
    grey, bad = [], []
    cues: list[tuple[Path, FocusCue]] = []
    for img_path, gt_path in chosen:
        try:
            frac, cue = content.gt_content(img_path, gt_path, polarity)
        except MaskContentError as exc:  # the loader would refuse it too
            bad.append(str(exc))
            cues.append((gt_path, FocusCue(None, "unreadable")))
            continue
        except Exception as exc:  # noqa: BLE001 -- unreadable files are reported by the header probe
            log.debug("content check skipped %s: %s", gt_path, exc)
            cues.append((gt_path, FocusCue(None, "unreadable")))
            continue
        if frac > content.GREY_WARN_FRACTION:
            grey.append((gt_path, frac))
        if cue is not None:
            cues.append((gt_path, cue))
    if bad:
        more = f"\n      and {len(bad) - _LISTED} more" if len(bad) > _LISTED else ""
        issues.append(LayoutIssue(dataset, "mask_content", (
            f"{len(bad)} of {len(chosen)} checked GT files cannot be read as masks (the loader refuses them):\n      "
            + "\n      ".join(bad[:_LISTED]) + more)))
    if grey:
        listed = ", ".join(f"{p} ({f:.0%} grey)" for p, f in grey[:5])
        more = f" and {len(grey) - 5} more" if len(grey) > 5 else ""
        issues.append(LayoutIssue(dataset, "grey_gt", (
            f"{len(grey)} of {len(chosen)} checked GT files are not binary masks (pixels strictly between "
            f"{content.GREY_LOW} and {content.GREY_HIGH}): {listed}{more}; they are thresholded at half range "
            "(>= 128 of 255 counts as white)")))
    if polarity is not None:
        kind, text = PolarityVerdict.of(cues, len(chosen)).message(polarity, chosen[0][1].parent)
        if notes or kind not in NOTE_KINDS:
            issues.append(LayoutIssue(dataset, kind, text))
    return issues


def probe_pairs(dataset: str, pairs: Iterable[tuple[Path, Path]], level: str,
                probe_gt: Callable[..., tuple[int, int]] | None = None,
                polarity: str | None = None, notes: bool = False) -> list[LayoutIssue]:
    """Readability and image/GT size agreement of every pair (``level`` != ``off``), then their content.

    ``probe_gt(path, decode=...)`` reads the GT's (height, width) for GT files
    that are not images (Lytro ``.mat``; their content is not checked); image
    GTs are also checked to be readable as masks, to be binary masks and, when
    ``polarity`` is given, to mark the sharper side of the image as in focus.
    ``notes``: also return the notes (:data:`NOTE_KINDS`), as :func:`check_datasets` does.
    """
    if check_level(level) == "off":
        return []
    decode = level == "full"
    issues: list[LayoutIssue] = []
    good: list[tuple[Path, Path]] = []
    for img_path, gt_path in pairs:
        sizes = []
        for path, reader in ((img_path, probe_image), (gt_path, probe_gt or probe_image)):
            try:
                sizes.append(reader(path, decode=decode))
            except (OSError, ValueError, SyntaxError, UnidentifiedImageError, KeyError) as exc:
                issues.append(LayoutIssue(dataset, "unreadable", f"{path}: {type(exc).__name__}: {exc}"))
                sizes.append(None)
        (img_hw, gt_hw) = sizes
        if img_hw and gt_hw and img_hw != gt_hw:
            issues.append(LayoutIssue(
                dataset, "size_mismatch",
                f"image {img_path} is {img_hw[1]}x{img_hw[0]} but GT {gt_path} is {gt_hw[1]}x{gt_hw[0]} (WxH)"))
        elif img_hw and gt_hw:
            good.append((img_path, gt_path))
    if probe_gt is None:
        issues += _content_issues(dataset, good, polarity, level, notes)
    return issues


def _datasets_of(splits: Mapping[str, Mapping[str, object] | None]) -> list[tuple[str, object]]:
    out = []
    for split, sets in splits.items():
        for key, ds in (sets or {}).items():
            out.append((f"{split}/{key}", ds))
    return out


def _identity(ds: object) -> tuple:
    """Two dataset objects over the same files (data=folder's train/val/test) are checked once."""
    pairs = tuple(getattr(ds, "pairs", ()) or ())
    return (type(ds).__name__, str(getattr(ds, "root", id(ds))), getattr(ds, "polarity", None), pairs,
            getattr(ds, "split", None))


def shared_split_issues(splits: Mapping[str, Mapping[str, object] | None]) -> list[LayoutIssue]:
    """Validation / test sets that contain training images (e.g. ``data=folder`` with one folder for all)."""
    train = {Path(p[0]).resolve() for ds in (splits.get("train") or {}).values() for p in getattr(ds, "pairs", ())}
    if not train:
        return []
    issues = []
    for split in ("val", "test"):
        for key, ds in (splits.get(split) or {}).items():
            pairs = getattr(ds, "pairs", ()) or ()
            shared = sum(Path(p[0]).resolve() in train for p in pairs)
            if shared:
                root = getattr(ds, "root", "?")
                issues.append(LayoutIssue(f"{split}/{key}", "shared_split", (
                    f"{shared} of {len(pairs)} images are also training images ({root}): "
                    f"{'validation' if split == 'val' else 'test'} scores measure fit, not generalisation")))
    return issues


def check_datasets(splits: Mapping[str, Mapping[str, object] | None], level: str = "headers",
                   shared: bool = True) -> tuple[list[LayoutIssue], list[str]]:
    """Issues of every dataset (de-duplicated) and one summary line per dataset.

    ``splits`` maps ``train``/``val``/``test`` to ``{name: dataset}``; datasets
    without a ``layout_issues`` method are listed but not checked. ``shared``:
    also note validation / test sets that reuse training images.
    """
    check_level(level)
    issues: list[LayoutIssue] = []
    seen: set[LayoutIssue] = set()
    summary: list[str] = []
    done: dict[tuple, list[LayoutIssue]] = {}
    for where, ds in _datasets_of(splits):
        if not hasattr(ds, "layout_issues"):
            summary.append(f"  {where}: {type(ds).__name__} ({len(ds)} samples, not checked)")
            continue
        key = _identity(ds)
        if key not in done:
            takes_notes = "notes" in inspect.signature(ds.layout_issues).parameters
            done[key] = ds.layout_issues(level, notes=True) if takes_notes else ds.layout_issues(level)
        found = done[key]
        errors = [i for i in found if not i.is_warning]
        warned = [i for i in found if i.is_warning and not i.is_note]
        state = "OK" if not errors else f"{len(errors)} problem(s)"
        if warned:
            state += f", {len(warned)} warning(s)"
        summary.append(f"  {where}: {ds.describe()} -> {state}")
        for issue in found:
            if issue not in seen:
                seen.add(issue)
                issues.append(issue)
    if shared:
        issues += shared_split_issues(splits)
    return issues, summary


def format_report(issues: list[LayoutIssue], summary: list[str] | None = None) -> str:
    errors = [i for i in issues if not i.is_warning]
    warned = [i for i in issues if i.is_warning and not i.is_note]
    notes = [i for i in issues if i.is_note]
    head = "data layout check: " + ("OK" if not errors else f"{len(errors)} problem(s)")
    if warned:
        head += f", {len(warned)} warning(s)"
    lines = [head, *(summary or [])]
    for title, group in (("problems:", errors), ("warnings:", warned), ("notes:", notes)):
        if group:
            lines.append(title)
            lines += [f"  - {issue}" for issue in group]
    kinds = list(dict.fromkeys(i.kind for i in issues))
    fixes = [f"  {k}: {_FIXES[k]}" for k in kinds if k in _FIXES]
    if fixes:
        lines.append("how to fix:")
        lines += fixes
    if errors:
        fatal = any(i.kind in ("unreadable", "size_mismatch", "mask_content") for i in errors)
        lines.append("Fix the files (python -m dbd_lightning.data.prepare imports a download into the expected "
                     "layout), point data.root / DBD_DATA_ROOT at the right folder, or set data.strict=false to "
                     "continue with a warning" + (" (unreadable files, size mismatches and GTs that cannot be read "
                                                  "as masks then stop the run when they are loaded)." if fatal
                                                  else "."))
    return "\n".join(lines)


def enforce(splits: Mapping[str, Mapping[str, object] | None], strict: bool = True, level: str = "headers",
            shared: bool = False) -> str:
    """Check all datasets; raise :class:`DatasetLayoutError` on errors (``strict``), else warn with the report.

    Warnings (grey GTs, inverted polarity; with ``shared`` validation on training
    images) never raise. Notes alone (the polarity evidence) are logged, not warned.
    """
    issues, summary = check_datasets(splits, level, shared=shared)
    report = format_report(issues, summary)
    if any(not i.is_warning for i in issues):
        if strict:
            raise DatasetLayoutError(report)
        warnings.warn(report, stacklevel=2)
    elif any(not i.is_note for i in issues):
        warnings.warn(report, stacklevel=2)
    elif issues:
        log.info(report)
    return report


def warn_shared_splits(splits: Mapping[str, Mapping[str, object] | None]) -> list[LayoutIssue]:
    """Warn (and log) when validation / test sets reuse training images; called when training starts."""
    issues = shared_split_issues(splits)
    for issue in issues:
        text = f"data: {issue}; {_FIXES['shared_split']}"
        log.warning(text)
        warnings.warn(text, stacklevel=2)
    return issues
