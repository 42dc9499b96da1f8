"""Photographs without masks, for self-training: a folder of images, mixed into a labeled training set.

* :class:`UnlabeledFolder`: every image of a folder (any names; no ``gt/`` needed, none is read).
  Samples carry a zero mask (a placeholder that the transforms move along; never a label) and
  ``labeled = 0``. ``exclude_cuhk_tr1_holdout=N`` treats the folder as CUHK's images: the CUHK-TE-1
  names and the same ``N``-image TR-1 hold-out as ``data=cuhk_tr1``'s validation set are left out, so
  neither a test image nor a validation image is ever trained on, even without its mask. ``length=n``
  serves ``n`` draws (image ``i mod`` the folder's count), so a photos-only training set can be as long as
  an epoch needs (``experiment=dffnet_lite2_synth_selftrain_tent_photos``).
* :class:`MixedLabeledUnlabeled`: a labeled dataset plus an unlabeled one, sized so that a fraction
  ``unlabeled_fraction`` of the samples (hence, on average, of each shuffled batch) are unlabeled;
  unlabeled images repeat when fewer are available. Every sample gets ``labeled`` = 1 or 0.
"""

from __future__ import annotations

import re
from pathlib import Path

from torch.utils.data import Dataset

from .errors import DataConfigError
from .io import list_images, read_rgb

__all__ = ["MixedLabeledUnlabeled", "UnlabeledFolder", "missing_unlabeled_message"]

#: the names of the CUHK defocus images (out_of_focus0001 ... out_of_focus0704: lower-cased stems)
_CUHK_NAME = re.compile(r"out_of_focus\d{4}")


def missing_unlabeled_message(root: str | Path) -> str | None:
    """The error text when the unlabeled photo folder ``root`` is not a folder, else None. Shared by
    :class:`UnlabeledFolder` and the train precheck (which says it before the memory estimate or any model)."""
    root = Path(root).expanduser()
    if root.is_dir():
        return None
    return (f"unlabeled photo folder not found: {root} (data.unlabeled_root): give a folder of photographs "
            "(jpg/png/...); no masks are needed")


class UnlabeledFolder(Dataset):
    """Images of ``root`` (sorted by name), no masks. Args: see the module docstring."""

    def __init__(self, root: str | Path, exclude_cuhk_tr1_holdout: int = 0, holdout_seed: int = 0,
                 length: int | None = None) -> None:
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise DataConfigError(f"the unlabeled set's length (data.train_length in "
                                  f"experiment=dffnet_lite2_synth_selftrain_tent_photos) must be a positive number of "
                                  f"draws, or null for the folder once; got {length!r}")
        self.root = Path(root).expanduser()
        missing = missing_unlabeled_message(self.root)
        if missing:
            raise DataConfigError(missing)
        files = list_images(self.root)
        self.excluded: list[str] = []
        if exclude_cuhk_tr1_holdout:
            from .benchmarks import CUHK
            from .benchmarks.cuhk import seeded_pick
            from .benchmarks.splits import cuhk_te1_entries

            te1 = {name for _, name in cuhk_te1_entries()}
            tr1 = [p.stem.lower() for p in files if p.stem.lower() not in te1]
            if len(tr1) != CUHK.TR1_COUNT:
                raise DataConfigError(f"{self.root} holds {len(tr1)} CUHK-TR-1 images, not {CUHK.TR1_COUNT}: the "
                                      "validation hold-out cannot be excluded (set data.exclude_cuhk_tr1_holdout=0 "
                                      "for a folder that is not CUHK's)")
            foreign = [name for name in tr1 if not _CUHK_NAME.fullmatch(name)]
            if foreign:  # another collection of 604 photos would drop 60 arbitrary ones and claim CUHK's hold-out
                raise DataConfigError(f"{self.root} is not CUHK's image folder ({foreign[0]!r} is not a CUHK name, "
                                      "out_of_focusNNNN): the validation hold-out cannot be excluded (set "
                                      "data.exclude_cuhk_tr1_holdout=0 for a folder that is not CUHK's)")
            drop = te1 | seeded_pick(tr1, exclude_cuhk_tr1_holdout, holdout_seed)  # = CUHK(split="tr1_val")
            self.excluded = sorted(p.name for p in files if p.stem.lower() in drop)
            files = [p for p in files if p.stem.lower() not in drop]
        if not files:
            raise DataConfigError(f"no images in {self.root} (data.unlabeled_root): expected .jpg/.png/... files")
        self.files = files
        self.length = len(files) if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        import numpy as np

        index = int(index)
        if not 0 <= index < self.length:
            raise IndexError(f"draw {index} of {self.length}")
        path = self.files[index % len(self.files)]
        image = read_rgb(path)
        return {"image": image, "mask": np.zeros(image.shape[:2], np.uint8), "name": path.stem, "labeled": 0}

    def describe(self) -> str:
        extra = f", {len(self.excluded)} excluded (CUHK TE-1 and the TR-1 hold-out)" if self.excluded else ""
        draws = f", {self.length} draws" if self.length != len(self.files) else ""
        return f"unlabeled photos at {self.root}: {len(self.files)} images{extra}{draws}"


class MixedLabeledUnlabeled(Dataset):
    """``labeled`` followed by ``n_unlabeled`` draws of ``unlabeled`` (index modulo its length).

    ``n_unlabeled = round(len(labeled) * f / (1 - f))`` for ``f = unlabeled_fraction`` in [0, 1).
    """

    def __init__(self, labeled: Dataset, unlabeled: Dataset, unlabeled_fraction: float = 0.5) -> None:
        f = float(unlabeled_fraction)
        if not 0.0 <= f < 1.0:
            raise ValueError(f"unlabeled_fraction must be in [0, 1), got {unlabeled_fraction} (data.unlabeled_fraction)")
        self.labeled, self.unlabeled = labeled, unlabeled
        self.n_labeled = len(labeled)
        self.n_unlabeled = round(self.n_labeled * f / (1.0 - f))

    def __len__(self) -> int:
        return self.n_labeled + self.n_unlabeled

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if index < self.n_labeled:
            return {**self.labeled[index], "labeled": 1}
        return {**self.unlabeled[(index - self.n_labeled) % len(self.unlabeled)], "labeled": 0}
