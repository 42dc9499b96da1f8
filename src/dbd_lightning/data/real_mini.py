"""The real photographs shipped inside the package: 5 CUHK + 5 DUT test pairs at 320 x 320.

These ten pairs (white = in focus) let every training run and the released model be
checked on real photographs with nothing downloaded (``data=real_mini``). Ten images
are enough to *select* (a model, a recipe), not to tune or to report a benchmark.
"""

from __future__ import annotations

from pathlib import Path

from .folder import ImageMaskFolder

__all__ = ["REAL_MINI_SUBSETS", "real_mini_root", "real_mini_folder"]

#: subset name (as logged: ``test/<name>/mae``) -> folder under the package's resources
REAL_MINI_SUBSETS: dict[str, str] = {"real_cuhk": "cuhk_te_sample", "real_dut": "dut_te_sample"}


def real_mini_root() -> Path:
    """Folder holding ``cuhk_te_sample/`` and ``dut_te_sample/`` (``image/`` + ``gt/`` each)."""
    return Path(__file__).resolve().parent.parent / "resources" / "real_mini"


def real_mini_folder(subset: str) -> ImageMaskFolder:
    """One real subset (``real_cuhk`` or ``real_dut``) as an :class:`ImageMaskFolder`."""
    if subset not in REAL_MINI_SUBSETS:
        raise ValueError(f"unknown real_mini subset {subset!r}; valid: {', '.join(REAL_MINI_SUBSETS)}")
    return ImageMaskFolder(real_mini_root() / REAL_MINI_SUBSETS[subset], polarity="white_in_focus")
