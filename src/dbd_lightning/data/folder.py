"""A benchmark laid out as ``root/<image_dir>`` + ``root/<gt_dir>`` with paired file stems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset

from .errors import DataConfigError, DatasetLayoutError
from .io import POLARITIES, Polarity, list_images, read_mask, read_rgb

__all__ = ["DataConfigError", "DatasetLayoutError", "ImageMaskFolder", "duplicate_keys", "match_by_key",
           "missing_folders_message"]


def _stem(path: Path) -> str:
    return path.stem


def match_by_key(
    images: list[Path], gts: list[Path], image_key: Callable[[Path], str] = _stem,
    gt_key: Callable[[Path], str] = _stem,
) -> tuple[dict[str, Path], dict[str, Path], list[str], list[str]]:
    """Index images and GT files by key (default: file stem).

    Returns ``(images, gts, no_gt, no_image)``: the two ``key -> path`` dicts and
    the sorted keys that have no GT / no image.
    """
    by_image = {image_key(p): p for p in images}
    by_gt = {gt_key(p): p for p in gts}
    return by_image, by_gt, sorted(set(by_image) - set(by_gt)), sorted(set(by_gt) - set(by_image))


def missing_folders_message(root: str | Path, image_dir: str = "image", gt_dir: str = "gt") -> str | None:
    """The error text when ``root/<image_dir>`` or ``root/<gt_dir>`` is not a folder, else None. Shared by
    :class:`ImageMaskFolder` and the train precheck (which says it before the memory estimate or any model)."""
    root = Path(root).expanduser()
    missing = [str(p) for p in (root / image_dir, root / gt_dir) if not p.is_dir()]
    if not missing:
        return None
    return (f"dataset folder(s) not found: {', '.join(missing)} (expected {root}/{image_dir}/ and {root}/{gt_dir}/; "
            "set data.root or the DBD_DATA_ROOT environment variable to where the data lives)")


def duplicate_keys(files: list[Path], key: Callable[[Path], str] = _stem) -> list[tuple[Path, Path]]:
    """Pairs of files that map to the same sample key (``a.jpg`` and ``a.png``): one would be dropped."""
    seen: dict[str, Path] = {}
    dups = []
    for p in files:
        k = key(p)
        if k in seen:
            dups.append((seen[k], p))
        else:
            seen[k] = p
    return dups


class ImageMaskFolder(Dataset):
    """Image/GT pairs matched by file stem (``1.jpg`` <-> ``1.png``).

    Returns the raw numpy sample dict (``image`` uint8 RGB, ``mask`` uint8
    {0,1} in-focus = 1, ``name``); transforms are applied by the datamodule.
    Per-file checks (readability, sizes, grey GTs, polarity) are done by
    :meth:`layout_issues`, which the datamodule runs before training.

    Args:
        root: dataset folder.
        image_dir / gt_dir: sub-folders of images and masks.
        polarity: on-disk GT polarity (``white_in_focus`` or ``white_blurred``).
        strict: raise on unpaired files and on two files with the same stem
            (otherwise they are recorded, reported by :meth:`layout_issues`, and
            the unpaired files are skipped).
    """

    def __init__(
        self,
        root: str | Path,
        image_dir: str = "image",
        gt_dir: str = "gt",
        polarity: Polarity = "white_in_focus",
        strict: bool = True,
    ) -> None:
        from .layout import LayoutIssue

        if polarity not in POLARITIES:
            raise DataConfigError(f"unknown polarity {polarity!r} (data.polarity); expected one of {POLARITIES}")
        self.root = Path(root).expanduser()
        self.polarity = polarity
        self.issues: list[LayoutIssue] = []
        img_dir, gt_path = self.root / image_dir, self.root / gt_dir
        missing = missing_folders_message(self.root, image_dir, gt_dir)
        if missing:
            raise DatasetLayoutError(missing)
        image_files, gt_files = list_images(img_dir), list_images(gt_path)
        lines = []
        for files, folder in ((image_files, img_dir), (gt_files, gt_path)):
            for a, b in duplicate_keys(files):
                msg = (f"{a.name} and {b.name} in {folder} have the same stem {a.stem!r}: only one of them would be "
                       "used; rename or remove one")
                self.issues.append(LayoutIssue(str(self.root), "duplicate", msg))
                lines.append(f"  {msg}")
        images, gts, no_gt, no_image = match_by_key(image_files, gt_files)
        if no_gt:
            msg = f"{len(no_gt)} image(s) without GT in {gt_path}: {no_gt[:10]}"
            self.issues.append(LayoutIssue(str(self.root), "unpaired", msg))
            lines.append(f"  {msg}")
        if no_image:
            msg = f"{len(no_image)} GT file(s) without image in {img_dir}: {no_image[:10]}"
            self.issues.append(LayoutIssue(str(self.root), "unpaired", msg))
            lines.append(f"  {msg}")
        if strict and lines:
            raise DatasetLayoutError("\n".join([f"unpaired or duplicate files in {self.root}:", *lines]))
        self.pairs = [(images[k], gts[k]) for k in sorted(set(images) & set(gts))]
        if not self.pairs:
            raise DatasetLayoutError(f"no image/GT pairs found under {self.root} (images in {img_dir}, GT in "
                                     f"{gt_path}, matched by file name without suffix)")

    def describe(self) -> str:
        return f"{type(self).__name__} at {self.root}: {len(self.pairs)} pairs ({self.polarity})"

    def layout_issues(self, level: str = "headers", notes: bool = False) -> list:
        """Everything wrong with the folder: recorded while building, plus per-file checks at ``level``
        (``notes``: also the check's notes, e.g. the evidence behind the polarity verdict)."""
        from .layout import probe_pairs

        return [*self.issues, *probe_pairs(str(self.root), self.pairs, level, polarity=self.polarity, notes=notes)]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        img_path, gt_path = self.pairs[index]
        image = read_rgb(img_path)
        mask = read_mask(gt_path, self.polarity)
        if image.shape[:2] != mask.shape:
            raise DatasetLayoutError(
                f"size mismatch: image {img_path} is {image.shape[1]}x{image.shape[0]} but GT {gt_path} "
                f"is {mask.shape[1]}x{mask.shape[0]} (WxH)"
            )
        return {"image": image, "mask": mask, "name": img_path.stem}
