"""CUHK defocus blur dataset (Shi et al. 2014) and its TR-1/TE-1, TR-2/TE-2 splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import Polarity, list_images
from .base import BenchmarkFolder
from .splits import cuhk_te1_entries, read_split_file

CUHK_IMAGE_DIRS = ("image", "images", "BlurDatasetImage")
CUHK_GT_DIRS = ("gt", "GT", "BlurDatasetGT")


def seeded_pick(names, n: int, seed: int) -> set[str]:
    """``n`` of ``names`` drawn with ``numpy.random.default_rng(seed)`` from their sorted order: the same
    draw whatever order the names come in (the TR-1 hold-out, label-efficiency subsets)."""
    ordered = sorted(names)
    return {ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))[:n]}


class CUHK(BenchmarkFolder):
    """The 704 defocus images of CUHK (``out_of_focusNNNN.jpg``/``.JPG`` + ``out_of_focusNNNN.png``).

    * ``all`` (704); ``tr1``/``te1`` (604/100): TE-1 is BTBNet's 100-image list
      shipped in ``dbd_lightning/resources``; ``tr1_train``/``tr1_val``: TR-1 cut
      into a fixed, seeded held-out part of ``holdout_size`` images (``tr1_val``,
      drawn by ``holdout_seed`` from the naturally sorted TR-1 names, so it does
      not depend on the files' order or on TE-1 being present) and the rest
      (``tr1_train``): model selection without looking at TE-1; ``tr2``/``te2`` (604/100): the
      MA-GANet split, whose list is not public: pass ``split_file`` (the 100
      TE-2 names, one per line, ``out_of_focusNNNN[.jpg]`` or ``k.bmp--name``).
    * Names are matched case-insensitively; the release's ``motion*`` images
      are ignored.
    * Polarity: the original GT is white = blurred. A folder of BTBNet's
      renamed copies (``1.bmp`` ... ``100.bmp``, as in DD's and BTBNet's
      releases) is recognised by its names and read as white = in focus (those
      copies are inverted); ``polarity`` overrides either.
    """

    NAME = "CUHK"
    POLARITY = "white_blurred"
    SPLITS = {"all": 704, "tr1": 604, "te1": 100, "tr2": 604, "te2": 100, "tr1_train": 544, "tr1_val": 60}
    FOLDERS = {s: (CUHK_IMAGE_DIRS, CUHK_GT_DIRS) for s in SPLITS}
    TR1_COUNT = 604

    def __init__(self, root: str | Path, split: str = "te1", split_file: str | Path | None = None,
                 polarity: Polarity | None = None, expected_count: int | None = None,
                 check_count: bool = True, holdout_size: int = 60, holdout_seed: int = 0,
                 optional: bool = False, train_fraction: float = 1.0, subset_seed: int = 0) -> None:
        """``optional``: a split whose pairs are all absent (CUHK-TE-1 withheld from a TR-1-only import, or
        no ``gt/`` folder at all) is not an error: it is empty and :attr:`absent` is true (the datamodule leaves it out, saying so)."""
        self.split_file = split_file
        self._polarity_given = polarity is not None
        self._btbnet = {alias: name for alias, name in cuhk_te1_entries()}
        self.renamed = False  # BTBNet-style k.bmp copies
        self.holdout_size, self.holdout_seed = int(holdout_size), int(holdout_seed)
        if split in ("tr1_train", "tr1_val") and not 0 < self.holdout_size < self.TR1_COUNT:
            raise ValueError(f"CUHK {split}: holdout_size must be between 1 and {self.TR1_COUNT - 1}, "
                             f"got {holdout_size} (data.holdout_size)")
        if expected_count is None and split == "tr1_val":
            expected_count = self.holdout_size
        self.train_fraction, self.subset_seed = float(train_fraction), int(subset_seed)
        if not 0.0 < self.train_fraction <= 1.0 or (self.train_fraction < 1.0 and split != "tr1_train"):
            raise ValueError(f"CUHK {split}: train_fraction must be in (0, 1] and is for split tr1_train only, "
                             f"got {train_fraction} (data.train_fraction)")
        if expected_count is None and split == "tr1_train":
            expected_count = self.subset_size(self.TR1_COUNT - self.holdout_size)
        self.optional = bool(optional)
        self.absent = False
        super().__init__(root, split, polarity, expected_count, check_count)
        if self.optional and not self.pairs:
            # nothing of this split is there (TE-1 withheld, or no masks at all): withheld, not broken
            wanted = {"split_list", "count", "missing_folder"}
            if all(i.kind in wanted for i in self.issues):
                self.issues, self.absent = [], True

    @property
    def split_label(self) -> str:
        return self.split.upper().replace("TR", "TR-").replace("TE", "TE-")

    def _key(self, path: Path) -> str:
        stem = path.stem.lower()
        return self._btbnet.get(stem, stem) if stem.isdigit() else stem

    image_key = gt_key = _key

    def list_image_files(self, folder: Path) -> list[Path]:
        files = [p for p in list_images(folder) if not p.stem.lower().startswith("motion")]
        self.renamed = bool(files) and all(p.stem.isdigit() for p in files)
        if self.renamed and not self._polarity_given:
            self.polarity = "white_in_focus"
        return files

    def list_gt_files(self, folder: Path) -> list[Path]:
        return [p for p in list_images(folder) if not p.stem.lower().startswith("motion")]

    def _test_names(self) -> set[str] | None:
        if self.split in ("tr1", "te1", "tr1_train", "tr1_val"):
            return {name for _, name in cuhk_te1_entries()}
        if self.split_file in (None, ""):
            self._issue("split_list", f"CUHK {self.split_label} needs the TE-2 list (MA-GANet's split is not "
                                      "public): set data.cuhk_split2_file=<file with the 100 TE-2 image names, "
                                      "one per line>")
            return None
        try:
            return set(read_split_file(self.split_file))
        except FileNotFoundError as exc:
            self._issue("split_list", f"{exc} (data.cuhk_split2_file)")
            return None

    def subset_size(self, n: int) -> int:
        """Pairs kept of ``n`` at ``train_fraction`` (at least one)."""
        return max(1, round(n * self.train_fraction))

    def holdout(self, tr1_keys: list[str]) -> set[str]:
        """The held-out part of TR-1: ``holdout_size`` names drawn with ``holdout_seed`` from the sorted TR-1 names."""
        return seeded_pick(tr1_keys, self.holdout_size, self.holdout_seed)

    def select(self, keys: list[str]) -> list[str]:
        if self.split == "all":
            return keys
        test = self._test_names()
        if test is None:
            return []
        if self.split in ("tr1_train", "tr1_val"):
            tr1 = [k for k in keys if k not in test]
            if len(tr1) != self.TR1_COUNT:  # a partial copy would draw a different held-out part
                self._issue("count", f"the TR-1 hold-out is drawn from all {self.TR1_COUNT} TR-1 images; found "
                                     f"{len(tr1)} in {self.image_dir}")
                return []
            held = self.holdout(tr1)
            keep = [k for k in tr1 if (k in held) == (self.split == "tr1_val")]
            if self.split == "tr1_train" and self.train_fraction < 1.0:
                chosen = seeded_pick(keep, self.subset_size(len(keep)), self.subset_seed)
                keep = [k for k in keep if k in chosen]
            return keep
        missing = sorted(test - set(keys))
        if missing and self.split.startswith("te"):
            self._issue("split_list", f"{len(missing)} image(s) of the {self.split_label} list have no image/GT "
                                      f"pair in {self.image_dir}: {missing[:10]}")
        if self.split.startswith("te"):
            return [k for k in keys if k in test]
        return [k for k in keys if k not in test]
