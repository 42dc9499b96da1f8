"""Generated benchmark trees in the published layouts (tiny 8x8 files, real file-name patterns)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dbd_lightning.data.benchmarks.splits import cuhk_te1_entries

SIZE = (8, 8)  # H, W
FIXTURES = Path(__file__).parent / "fixtures" / "real_mini"


def focus_mask(size=SIZE) -> np.ndarray:
    """The in-focus truth of every generated pair: left half in focus."""
    m = np.zeros(size, np.uint8)
    m[:, : size[1] // 2] = 1
    return m


def write_pair(img_path: Path, gt_path: Path, white_in_focus: bool, size=SIZE, value: int = 90) -> None:
    img_path.parent.mkdir(parents=True, exist_ok=True)
    gt_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(img_path, format="PNG" if img_path.suffix.lower()
                                                               in (".png", ".bmp") else "JPEG")
    m = focus_mask(size)
    Image.fromarray(((m if white_in_focus else 1 - m) * 255).astype(np.uint8)).save(gt_path)


def make_cuhk(root: Path, n: int = 704, motion: int = 3) -> Path:
    """``image/out_of_focusNNNN.jpg|.JPG`` + ``gt/out_of_focusNNNN.png`` (white = blurred), plus motion images.

    The TE-1 list names some files ``.JPG`` and some ``.jpg``; the tree uses the
    opposite case for every second one to exercise case-insensitive matching.
    """
    te1 = sorted(name for _, name in cuhk_te1_entries())
    others = [f"out_of_focus{i:04d}" for i in range(1, 2000) if f"out_of_focus{i:04d}" not in set(te1)]
    names = te1 + others[: n - len(te1)] if n >= len(te1) else te1[:n]
    for i, stem in enumerate(names):
        ext = ".JPG" if i % 2 else ".jpg"
        write_pair(root / "image" / f"{stem}{ext}", root / "gt" / f"{stem}.png", white_in_focus=False)
    for i in range(1, motion + 1):
        write_pair(root / "image" / f"motion{i:04d}.jpg", root / "gt" / f"motion{i:04d}.png", white_in_focus=False)
    return root


def make_dut(root: Path, n_train: int = 600, n_test: int = 500) -> Path:
    for i in range(1, n_train + 1):
        write_pair(root / "DUT600S_Training" / f"{i}.jpg", root / "DUT600GT_Training" / f"{i}.png", True)
    for i in range(1, n_test + 1):
        write_pair(root / "test" / "image" / f"{i}.jpg", root / "test" / "gt" / f"{i}.bmp", True)
    return root


def make_ctcug(root: Path, n: int = 150) -> Path:
    for i in range(1, n + 1):
        write_pair(root / "CTCUG_images" / f"{i}.jpg", root / "CTCUG_gt" / f"{i}.png", white_in_focus=False)
    return root


def make_ebd(root: Path, n: int = 1605) -> Path:
    for i in range(1, n + 1):  # unpadded numbers: natural order matters
        write_pair(root / "image" / f"{i}.jpg", root / "gt" / f"{i}.png", white_in_focus=True)
    return root
