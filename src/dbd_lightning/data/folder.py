"""A benchmark laid out as ``root/<image_dir>`` + ``root/<gt_dir>`` with paired file stems."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset

from ..utils.errors import UserError
from .io import POLARITIES, Polarity, list_images, read_mask, read_rgb


class DatasetLayoutError(UserError, RuntimeError):
    """The files on disk do not form the expected dataset layout."""


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


class ImageMaskFolder(Dataset):
    """Image/GT pairs matched by file stem (``1.jpg`` <-> ``1.png``).

    Returns the raw numpy sample dict (``image`` uint8 RGB, ``mask`` uint8
    {0,1} in-focus = 1, ``name``); transforms are applied by the datamodule.

    Args:
        root: dataset folder.
        image_dir / gt_dir: sub-folders of images and masks.
        polarity: on-disk GT polarity (``white_in_focus`` or ``white_blurred``).
        strict: raise on unpaired files (otherwise unpaired files are skipped).
    """

    def __init__(
        self,
        root: str | Path,
        image_dir: str = "image",
        gt_dir: str = "gt",
        polarity: Polarity = "white_in_focus",
        strict: bool = True,
    ) -> None:
        if polarity not in POLARITIES:
            raise ValueError(f"unknown polarity {polarity!r}; expected one of {POLARITIES}")
        self.root = Path(root).expanduser()
        self.polarity = polarity
        img_dir, gt_path = self.root / image_dir, self.root / gt_dir
        missing = [str(p) for p in (img_dir, gt_path) if not p.is_dir()]
        if missing:
            raise DatasetLayoutError(
                f"dataset folder(s) not found: {', '.join(missing)} "
                f"(expected {self.root}/{image_dir}/ and {self.root}/{gt_dir}/; set data.root or the "
                "DBD_DATA_ROOT environment variable to where the data lives)"
            )
        images, gts, no_gt, no_image = match_by_key(list_images(img_dir), list_images(gt_path))
        if strict and (no_gt or no_image):
            lines = [f"unpaired files in {self.root}:"]
            if no_gt:
                lines.append(f"  {len(no_gt)} image(s) without GT in {gt_path}: {no_gt[:10]}")
            if no_image:
                lines.append(f"  {len(no_image)} GT file(s) without image in {img_dir}: {no_image[:10]}")
            raise DatasetLayoutError("\n".join(lines))
        self.pairs = [(images[k], gts[k]) for k in sorted(set(images) & set(gts))]
        if not self.pairs:
            raise DatasetLayoutError(f"no image/GT pairs found under {self.root}")

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
