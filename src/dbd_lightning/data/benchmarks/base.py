"""Shared machinery of the real benchmarks: find folders, pair files, select a split, check.

A benchmark is an :class:`~dbd_lightning.data.folder.ImageMaskFolder` whose
folders, on-disk polarity and published counts are class attributes. Building
one never raises on layout problems: it pairs what it can and records what it
could not; :meth:`BenchmarkFolder.layout_issues` lists everything wrong, and
the datamodule / ``python -m dbd_lightning.data.check`` report them together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ..folder import DatasetLayoutError, ImageMaskFolder, match_by_key
from ..io import POLARITIES, Polarity, list_images
from ..layout import LayoutIssue, check_level, format_report, probe_pairs

FILE_ISSUES = ("missing_folder", "unpaired", "duplicate", "missing_file")


def natural_key(text: str) -> list:
    """Sort key that orders ``2`` before ``10`` (numeric runs compared as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


class BenchmarkFolder(ImageMaskFolder):
    """Image/GT pairs of one split of a published benchmark.

    Subclasses set ``NAME``, ``POLARITY``, ``SPLITS`` (split -> published
    count) and ``FOLDERS`` (split -> ``(image dir candidates, GT dir
    candidates)``, paths relative to ``root``; the first is the canonical
    layout, the others are accepted alternatives).

    Args:
        root: the benchmark's folder (e.g. ``<data.root>/DUT``).
        split: one of ``SPLITS``.
        polarity: override the on-disk GT polarity (default: the dataset's).
        expected_count: override the published count (tests, partial copies).
        check_count: compare the number of pairs with the expected count.
    """

    NAME: ClassVar[str] = "benchmark"
    POLARITY: ClassVar[Polarity] = "white_in_focus"
    SPLITS: ClassVar[dict[str, int]] = {}
    FOLDERS: ClassVar[dict[str, tuple[Sequence[str], Sequence[str]]]] = {}

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        polarity: Polarity | None = None,
        expected_count: int | None = None,
        check_count: bool = True,
    ) -> None:  # noqa: D107 -- ImageMaskFolder.__init__ raises on the first problem; we collect them
        if split not in self.SPLITS:
            raise ValueError(f"{self.NAME}: unknown split {split!r}; expected one of {list(self.SPLITS)}")
        polarity = polarity or self.POLARITY
        if polarity not in POLARITIES:
            raise ValueError(f"{self.NAME}: unknown polarity {polarity!r}; expected one of {POLARITIES}")
        self.root = Path(root).expanduser()
        self.split, self.polarity = split, polarity
        self.expected_count = self.SPLITS[split] if expected_count is None else int(expected_count)
        self.check_count = check_count
        self.issues: list[LayoutIssue] = []
        self.image_dir = self.gt_dir = None
        self.pairs: list[tuple[Path, Path]] = []
        self._build()

    # ---- hooks for subclasses -------------------------------------------------------------
    @property
    def tag(self) -> str:
        return f"{self.NAME} {self.split}"

    def folder_candidates(self) -> tuple[Sequence[str], Sequence[str]]:
        return self.FOLDERS[self.split]

    def list_image_files(self, folder: Path) -> list[Path]:
        return list_images(folder)

    def list_gt_files(self, folder: Path) -> list[Path]:
        return list_images(folder)

    def image_key(self, path: Path) -> str:
        return path.stem

    def gt_key(self, path: Path) -> str:
        return path.stem

    def select(self, keys: list[str]) -> list[str]:
        """The keys (sorted naturally) that form this split; may record issues."""
        return keys

    #: reads a non-image GT's (height, width) for the layout check; ``None`` = GT files are images
    probe_gt = None

    # ---- building ---------------------------------------------------------------------------
    def _issue(self, kind: str, message: str) -> None:
        # problems of the files themselves are the dataset's (reported once for all its splits)
        where = self.NAME if kind in FILE_ISSUES else self.tag
        self.issues.append(LayoutIssue(where, kind, message))

    def _find(self, candidates: Sequence[str], what: str) -> Path | None:
        for rel in candidates:
            path = self.root / rel
            if path.is_dir():
                return path
        looked = ", ".join(str(self.root / c) for c in candidates)
        self._issue("missing_folder", f"{what} folder not found; looked for {looked} (set data.root or "
                                      "DBD_DATA_ROOT to the folder holding the benchmarks)")
        return None

    def _build(self) -> None:
        image_names, gt_names = self.folder_candidates()
        self.image_dir = self._find(image_names, "image")
        self.gt_dir = self._find(gt_names, "GT")
        if self.image_dir is None or self.gt_dir is None:
            return
        images = self.list_image_files(self.image_dir)
        gts = self.list_gt_files(self.gt_dir)
        for files, folder, key in ((images, self.image_dir, self.image_key), (gts, self.gt_dir, self.gt_key)):
            seen: dict[str, Path] = {}
            for p in files:
                if key(p) in seen:
                    self._issue("duplicate", f"{seen[key(p)].name} and {p.name} in {folder} are the same sample")
                seen[key(p)] = p
        by_image, by_gt, no_gt, no_image = match_by_key(images, gts, self.image_key, self.gt_key)
        if no_gt:
            self._issue("unpaired", f"{len(no_gt)} image(s) in {self.image_dir} without GT in {self.gt_dir}: "
                                    f"{[by_image[k].name for k in no_gt[:10]]}")
        if no_image:
            self._issue("unpaired", f"{len(no_image)} GT file(s) in {self.gt_dir} without image in "
                                    f"{self.image_dir}: {[by_gt[k].name for k in no_image[:10]]}")
        keys = sorted(set(by_image) & set(by_gt), key=natural_key)
        self.pairs = [(by_image[k], by_gt[k]) for k in self.select(keys)]
        if self.check_count and len(self.pairs) != self.expected_count:
            self._issue("count", f"expected {self.expected_count} image/GT pairs, found {len(self.pairs)} "
                                 f"(images in {self.image_dir}, GT in {self.gt_dir})")

    # ---- checking -----------------------------------------------------------------------------
    def describe(self) -> str:
        return f"{self.tag} at {self.root}: {len(self.pairs)} pairs (expected {self.expected_count})"

    def layout_issues(self, level: str = "headers", notes: bool = False) -> list[LayoutIssue]:
        """Everything wrong with this split: recorded while building, plus per-file checks at ``level``
        (``notes``: also the check's notes, e.g. the evidence behind the polarity verdict)."""
        check_level(level)
        return [*self.issues, *probe_pairs(self.NAME, self.pairs, level, probe_gt=self.probe_gt,
                                           polarity=self.polarity, notes=notes)]

    def check(self, level: str = "headers") -> None:
        """Raise :class:`DatasetLayoutError` with the full report if anything is wrong."""
        issues = self.layout_issues(level)
        if issues:
            raise DatasetLayoutError(format_report(issues, [f"  {self.describe()}"]))

    def __getitem__(self, index: int) -> dict:
        if not self.pairs:
            raise DatasetLayoutError(f"{self.describe()}; run python -m dbd_lightning.data.check to see why")
        return super().__getitem__(index)
