"""D'Andres et al. Lytro blur-estimation set: RGB images + disk-radius maps in ``.mat`` files.

Layout (flat, as released): ``image_NN.png`` + ``map_NN.mat`` (key ``blurMap``,
disk (pillbox) radius in pixels, 0.5 .. 6 in steps of 0.25) and the
sigma <-> radius table ``convertion.mat`` (key ``convertion``; column 0 =
Gaussian sigma, column 1 = disk radius). ``images/`` + ``maps/`` sub-folders
are accepted too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..folder import DatasetLayoutError
from ..io import Polarity, list_images, read_rgb
from .base import BenchmarkFolder

BLUR_MAP_KEY = "blurMap"
CONVERSION_FILE = "convertion.mat"  # (sic) the release's spelling
CONVERSION_KEY = "convertion"


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    try:
        return loadmat(path)
    except NotImplementedError as exc:  # MATLAB v7.3 = HDF5
        raise ValueError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save with -v7") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable .mat file ({exc})") from exc


def _matrix(path: Path, key: str) -> np.ndarray:
    data = _loadmat(path)
    if key not in data:
        keys = sorted(k for k in data if not k.startswith("__"))
        raise KeyError(f"{path}: no variable {key!r} (it holds {keys})")
    return np.asarray(data[key], dtype=np.float32)


def read_blur_map(path: str | Path) -> np.ndarray:
    """The disk-radius map (float32, H x W) of a ``map_NN.mat`` file."""
    arr = _matrix(Path(path), BLUR_MAP_KEY)
    if arr.ndim != 2:
        raise ValueError(f"{path}: {BLUR_MAP_KEY} has shape {arr.shape}, expected a 2-D map")
    return arr


def read_conversion_table(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(sigma, radius)`` columns of ``convertion.mat``, sorted by radius."""
    table = _matrix(Path(path), CONVERSION_KEY)
    if table.ndim != 2 or table.shape[1] != 2:
        raise ValueError(f"{path}: {CONVERSION_KEY} has shape {table.shape}, expected (N, 2) = (sigma, radius)")
    order = np.argsort(table[:, 1])
    return table[order, 0], table[order, 1]


class BlurConversion:
    """Gaussian sigma <-> disk radius by linear interpolation in the published table."""

    def __init__(self, sigma: np.ndarray, radius: np.ndarray) -> None:
        self.sigma, self.radius = np.asarray(sigma, np.float32), np.asarray(radius, np.float32)

    @classmethod
    def from_file(cls, path: str | Path) -> BlurConversion:
        return cls(*read_conversion_table(path))

    def radius_to_sigma(self, radius: np.ndarray | float) -> np.ndarray:
        return np.interp(radius, self.radius, self.sigma).astype(np.float32)

    def sigma_to_radius(self, sigma: np.ndarray | float) -> np.ndarray:
        return np.interp(sigma, self.sigma, self.radius).astype(np.float32)


def _probe_mat(path: Path, decode: bool = False) -> tuple[int, int]:
    return read_blur_map(path).shape[:2]


class Lytro(BenchmarkFolder):
    """22 Lytro images (360x360) with disk-radius GT.

    Samples: ``image`` (uint8 RGB), ``radius`` (float32 map, pixels), ``mask``
    (in focus = ``radius <= in_focus_radius``; 0.5 = the smallest level, i.e.
    sharp) and, when ``with_sigma``, ``sigma`` (Gaussian sigma via
    ``convertion.mat``).
    """

    NAME = "Lytro"
    POLARITY = "white_in_focus"  # unused: the GT is a radius map
    SPLITS = {"all": 22}
    FOLDERS = {"all": ((".", "images", "image"), (".", "maps", "gt"))}
    probe_gt = staticmethod(_probe_mat)

    def __init__(self, root: str | Path, split: str = "all", in_focus_radius: float = 0.5,
                 with_sigma: bool = False, polarity: Polarity | None = None,
                 expected_count: int | None = None, check_count: bool = True) -> None:
        self.in_focus_radius, self.with_sigma = float(in_focus_radius), with_sigma
        self._conversion: BlurConversion | None = None
        super().__init__(root, split, polarity, expected_count, check_count)

    def list_image_files(self, folder: Path) -> list[Path]:
        return [p for p in list_images(folder) if p.stem.lower().startswith("image_")]

    def list_gt_files(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".mat" and p.stem.lower().startswith("map_"))

    def image_key(self, path: Path) -> str:
        return path.stem.lower().removeprefix("image_")

    def gt_key(self, path: Path) -> str:
        return path.stem.lower().removeprefix("map_")

    @property
    def conversion_file(self) -> Path | None:
        for folder in (self.root, self.gt_dir, self.image_dir):
            if folder is not None and (folder / CONVERSION_FILE).is_file():
                return folder / CONVERSION_FILE
        return None

    def _build(self) -> None:
        super()._build()
        if self.conversion_file is None and self.image_dir is not None:
            self._issue("missing_file", f"sigma<->radius table {CONVERSION_FILE} not found in {self.root}")

    @property
    def conversion(self) -> BlurConversion:
        if self._conversion is None:
            if self.conversion_file is None:
                raise DatasetLayoutError(f"Lytro: {CONVERSION_FILE} not found in {self.root}")
            self._conversion = BlurConversion.from_file(self.conversion_file)
        return self._conversion

    def __getitem__(self, index: int) -> dict:
        if not self.pairs:
            raise DatasetLayoutError(f"{self.describe()}; run python -m dbd_lightning.data.check to see why")
        img_path, map_path = self.pairs[index]
        image, radius = read_rgb(img_path), read_blur_map(map_path)
        if image.shape[:2] != radius.shape:
            raise DatasetLayoutError(f"size mismatch: image {img_path} is {image.shape[1]}x{image.shape[0]} but "
                                     f"{map_path} is {radius.shape[1]}x{radius.shape[0]} (WxH)")
        sample = {"image": image, "radius": radius, "name": img_path.stem,
                  "mask": (radius <= self.in_focus_radius).astype(np.uint8)}
        if self.with_sigma:
            sample["sigma"] = self.conversion.radius_to_sigma(radius)
        return sample
