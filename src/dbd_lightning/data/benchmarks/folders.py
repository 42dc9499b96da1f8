"""DUT, CTCUG and EBD: plain image/GT folder pairs with fixed names, polarity and counts."""

from __future__ import annotations

from .base import BenchmarkFolder


class DUT(BenchmarkFolder):
    """DUT (Zhao et al.): 600 training pairs ``DUT600S_Training/`` + ``DUT600GT_Training/``;
    500 test pairs ``test/image/`` + ``test/gt/`` (also accepted: ``DUT500S-Testing/`` +
    ``DUT500GT-Testing/``, or ``image/`` + ``gt/`` directly under ``root``). GT white = in focus."""

    NAME = "DUT"
    POLARITY = "white_in_focus"
    SPLITS = {"train": 600, "test": 500}
    FOLDERS = {
        "train": (("DUT600S_Training", "train/DUT600S_Training"), ("DUT600GT_Training", "train/DUT600GT_Training")),
        "test": (("test/image", "DUT500S-Testing", "image"), ("test/gt", "DUT500GT-Testing", "gt")),
    }


class CTCUG(BenchmarkFolder):
    """CTCUG (DeFusionNet): 150 pairs ``CTCUG_images/`` + ``CTCUG_gt/``; GT white = blurred
    (the official D-DFFNet code inverts it when reading)."""

    NAME = "CTCUG"
    POLARITY = "white_blurred"
    SPLITS = {"all": 150}
    FOLDERS = {"all": (("CTCUG_images", "images", "image"), ("CTCUG_gt", "gt"))}


class EBD(BenchmarkFolder):
    """EBD (D-DFFNet): 1605 pairs ``image/`` + ``gt/``, GT white = in focus.

    The last 300 are wide-DOF (all in focus) images; split ``first1305`` keeps the
    first 1305 in natural (numeric-aware) order of the file stems, i.e. EBD(1305).
    """

    NAME = "EBD"
    POLARITY = "white_in_focus"
    SPLITS = {"all": 1605, "first1305": 1305}
    FOLDERS = {s: (("image", "images"), ("gt", "GT")) for s in SPLITS}

    def select(self, keys: list[str]) -> list[str]:
        if self.split == "first1305":
            if self.check_count and len(keys) != self.SPLITS["all"]:
                self._issue("count", f"EBD(1305) is the first 1305 of the 1605 pairs, but {len(keys)} were found; "
                                     "the selection would not be the published one")
            return keys[:1305]
        return keys
