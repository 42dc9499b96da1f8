"""CUHK defocus blur dataset (Shi et al. 2014) and its TR-1/TE-1, TR-2/TE-2 splits."""

from __future__ import annotations

from pathlib import Path

from ..io import Polarity, list_images
from .base import BenchmarkFolder
from .splits import cuhk_te1_entries, read_split_file

CUHK_IMAGE_DIRS = ("image", "images", "BlurDatasetImage")
CUHK_GT_DIRS = ("gt", "GT", "BlurDatasetGT")


class CUHK(BenchmarkFolder):
    """The 704 defocus images of CUHK (``out_of_focusNNNN.jpg``/``.JPG`` + ``out_of_focusNNNN.png``).

    * ``all`` (704); ``tr1``/``te1`` (604/100): TE-1 is BTBNet's 100-image list
      shipped in ``dbd_lightning/resources``; ``tr2``/``te2`` (604/100): the
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
    SPLITS = {"all": 704, "tr1": 604, "te1": 100, "tr2": 604, "te2": 100}
    FOLDERS = {s: (CUHK_IMAGE_DIRS, CUHK_GT_DIRS) for s in SPLITS}

    def __init__(self, root: str | Path, split: str = "te1", split_file: str | Path | None = None,
                 polarity: Polarity | None = None, expected_count: int | None = None,
                 check_count: bool = True) -> None:
        self.split_file = split_file
        self._polarity_given = polarity is not None
        self._btbnet = {alias: name for alias, name in cuhk_te1_entries()}
        self.renamed = False  # BTBNet-style k.bmp copies
        super().__init__(root, split, polarity, expected_count, check_count)

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
        if self.split in ("tr1", "te1"):
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

    def select(self, keys: list[str]) -> list[str]:
        if self.split == "all":
            return keys
        test = self._test_names()
        if test is None:
            return []
        missing = sorted(test - set(keys))
        if missing and self.split.startswith("te"):
            self._issue("split_list", f"{len(missing)} image(s) of the {self.split_label} list have no image/GT "
                                      f"pair in {self.image_dir}: {missing[:10]}")
        if self.split.startswith("te"):
            return [k for k in keys if k in test]
        return [k for k in keys if k not in test]
