"""Layout check of on-disk benchmarks: one report that lists every problem found.

A dataset that supports the check has a ``layout_issues(level)`` method that
returns :class:`LayoutIssue` objects (missing folders, counts that differ from
the published ones, unpaired files, unreadable files, image/GT size
mismatches, split-list entries not on disk). :func:`check_datasets` gathers
them over all the datasets of a data config and formats one report;
:func:`enforce` raises it (``strict``) or warns.

Levels: ``headers`` opens every file's header (format, size, EXIF
orientation: fast, catches non-images and empty files); ``full`` also decodes
every pixel (catches truncated files) and checks that GT masks are binary
images; ``off`` only checks folders, pairing and counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .folder import DatasetLayoutError

LEVELS = ("off", "headers", "full")
#: a GT with more than this fraction of mid-grey pixels (16..239) is not a mask
MAX_GREY_FRACTION = 0.25  # resized real GTs are anti-aliased (up to ~6% grey)
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class LayoutIssue:
    """One problem: which dataset, what kind, and a message naming the files."""

    dataset: str
    kind: str  # missing_folder | missing_file | count | unpaired | duplicate | unreadable | size_mismatch | split_list | not_a_mask
    message: str

    def __str__(self) -> str:
        return f"[{self.dataset}] {self.kind}: {self.message}"


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"unknown layout check level {level!r}; expected one of {LEVELS}")
    return level


def probe_image(path: Path, decode: bool = False) -> tuple[int, int]:
    """(height, width) of an image file as the loaders see it (after EXIF orientation).

    Raises ``OSError``/``ValueError`` when the file cannot be read.
    """
    with Image.open(path) as img:
        if decode:
            img.load()
        width, height = img.size
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation in (5, 6, 7, 8):  # transposed by ImageOps.exif_transpose in io.py
        width, height = height, width
    return height, width


def grey_fraction(path: Path) -> float:
    """Fraction of pixels of a mask file that are neither near-black nor near-white."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"))
    return float(((arr > 15) & (arr < 240)).mean()) if arr.size else 0.0


def probe_pairs(dataset: str, pairs: Iterable[tuple[Path, Path]], level: str,
                probe_gt: Callable[..., tuple[int, int]] | None = None) -> list[LayoutIssue]:
    """Readability and image/GT size agreement of every pair (``level`` != ``off``).

    ``probe_gt(path, decode=...)`` reads the GT's (height, width) for GT files
    that are not images (Lytro ``.mat``); image GTs are also checked to be masks.
    """
    if check_level(level) == "off":
        return []
    decode = level == "full"
    issues: list[LayoutIssue] = []
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
        if decode and gt_hw and probe_gt is None:
            frac = grey_fraction(gt_path)
            if frac > MAX_GREY_FRACTION:
                issues.append(LayoutIssue(
                    dataset, "not_a_mask",
                    f"GT {gt_path} has {frac:.0%} mid-grey pixels: it looks like a photo, not a binary mask"))
    return issues


def _datasets_of(splits: Mapping[str, Mapping[str, object] | None]) -> list[tuple[str, object]]:
    out = []
    for split, sets in splits.items():
        for key, ds in (sets or {}).items():
            out.append((f"{split}/{key}", ds))
    return out


def check_datasets(splits: Mapping[str, Mapping[str, object] | None], level: str = "headers",
                   ) -> tuple[list[LayoutIssue], list[str]]:
    """Issues of every dataset (de-duplicated) and one summary line per dataset.

    ``splits`` maps ``train``/``val``/``test`` to ``{name: dataset}``; datasets
    without a ``layout_issues`` method are listed but not checked.
    """
    check_level(level)
    issues: list[LayoutIssue] = []
    seen: set[LayoutIssue] = set()
    summary: list[str] = []
    for where, ds in _datasets_of(splits):
        if not hasattr(ds, "layout_issues"):
            summary.append(f"  {where}: {type(ds).__name__} ({len(ds)} samples, not checked)")
            continue
        found = ds.layout_issues(level)
        summary.append(f"  {where}: {ds.describe()} -> {'OK' if not found else f'{len(found)} problem(s)'}")
        for issue in found:
            if issue not in seen:
                seen.add(issue)
                issues.append(issue)
    return issues, summary


def format_report(issues: list[LayoutIssue], summary: list[str] | None = None) -> str:
    head = "data layout check: " + ("OK" if not issues else f"{len(issues)} problem(s)")
    lines = [head, *(summary or [])]
    if issues:
        lines.append("problems:")
        lines += [f"  - {issue}" for issue in issues]
        lines.append("Fix the files (python -m dbd_lightning.data.prepare imports a download into the expected "
                     "layout), point data.root / DBD_DATA_ROOT at the right folder, or set data.strict=false to "
                     "continue with a warning.")
    return "\n".join(lines)


def enforce(splits: Mapping[str, Mapping[str, object] | None], strict: bool = True, level: str = "headers") -> str:
    """Check all datasets; raise :class:`DatasetLayoutError` (strict) or warn with the full report."""
    issues, summary = check_datasets(splits, level)
    report = format_report(issues, summary)
    if issues:
        if strict:
            raise DatasetLayoutError(report)
        warnings.warn(report, stacklevel=2)
    return report
