"""Saved prediction maps of other methods (published result folders) as an evaluation source.

A method's maps live in ``root/<dataset>/<image stem><name_suffix>.<ext>`` (or
``root/<image stem>...`` when ``root`` holds the maps directly, or a per-dataset
folder in ``dirs``). Maps are read as grey levels scaled by their dtype range
(8-bit / 16-bit images; ``.npy`` arrays are taken as they are, in [0, 1]),
converted to the in-focus probability with the declared ``polarity``, and
resized (bilinear) to the GT size when a method saved them at another size.
A colour map (channels that differ: a heat-map visualisation, not grey levels) or one with
transparent pixels is refused with :class:`SavedMapError` naming the file (a colour's luminance is
not a probability); a grey map stored as RGB (equal channels) is read as grey.
The folders written by ``python -m dbd_lightning.predict`` (``<output>/focus``)
are such folders, with ``polarity: white_in_focus``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..data.io import POLARITIES, _open
from ..data.masks import MaskContentError, _channels, _colour_problem
from ..utils.errors import ConfigError, UserError


class SavedMapError(UserError, ValueError):
    """A saved map that has no single grey reading (colour, transparency)."""


class SavedMapsNotFoundError(UserError, FileNotFoundError):
    """A method's map folder, or maps for some of the scored images, that are not there (``maps.<name>``)."""


DEFAULT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_map(path: str | Path) -> np.ndarray:
    """A saved map as float32 (H, W) in [0, 1] (grey levels / dtype range; ``.npy`` as stored)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        arr = np.load(path, allow_pickle=False).astype(np.float32)
        arr = arr.squeeze()
        if arr.ndim != 2:
            raise SavedMapError(f"map {path}: expected a 2-D array, got shape {arr.shape}")
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
            raise SavedMapError(f"map {path}: .npy values must lie in [0, 1] (got {arr.min()}..{arr.max()})")
        return arr
    try:
        values, top, rgb = _channels(_open(path), path, "saved map")
    except MaskContentError as exc:
        raise SavedMapError(f"{exc}; the maps of a saved_maps source must be grey levels") from None
    if rgb:
        problem = _colour_problem(values)
        if problem:
            raise SavedMapError(
                f"{path}: a colour saved map ({problem}); its grey level is read as the probability, and a colour's "
                "luminance is not one (a heat-map visualisation is not a map). Save the method's raw output as a "
                "grey image (8/16-bit PNG) or a .npy array in [0, 1], or point this source at those files")
        values = values[..., 0]
    return np.clip(values.astype(np.float32) / np.float32(top), 0.0, 1.0)


class SavedMaps:
    """One method's saved maps (see the module docstring).

    Args:
        root: folder with one sub-folder per dataset (or the maps themselves).
        polarity: ``white_in_focus`` (map = in-focus probability) or
            ``white_blurred`` (map = blur probability, e.g. BTBNet's / CUHK-style outputs).
        dirs: optional ``{dataset: folder}`` overrides.
        name_suffix: text between the image stem and the extension (``"_pred"``).
        suffixes: file extensions looked for, in order (add ``.npy`` for raw float maps).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        polarity: str = "white_in_focus",
        dirs: Mapping[str, str] | None = None,
        name_suffix: str = "",
        suffixes: Sequence[str] = DEFAULT_SUFFIXES,
        name: str = "maps",
    ) -> None:
        if polarity not in POLARITIES:
            raise ConfigError(f"maps.{name}.polarity: unknown map polarity {polarity!r}; expected one of {POLARITIES}")
        if root is None and not dirs:
            raise ConfigError(f"maps.{name}: saved maps need a root folder (maps.{name}.root=) or per-dataset "
                              f"folders (maps.{name}.dirs.<dataset>=)")
        self.root = Path(root).expanduser() if root is not None else None
        self.polarity, self.dirs, self.name = polarity, dict(dirs or {}), name
        self.name_suffix = name_suffix
        self.suffixes = tuple(s.lower() if s.startswith(".") else f".{s.lower()}" for s in suffixes)
        self._index: dict[str, tuple[Path, dict[str, Path]]] = {}

    def folder(self, dataset: str) -> Path:
        if dataset in self.dirs:
            path = Path(self.dirs[dataset]).expanduser()
        elif self.root is not None and (self.root / dataset).is_dir():
            path = self.root / dataset
        elif self.root is not None:
            path = self.root
        else:
            raise SavedMapsNotFoundError(f"maps.{self.name}: no folder of maps for dataset {dataset!r} (dirs: "
                                         f"{sorted(self.dirs)}); add maps.{self.name}.dirs.{dataset}=<folder>")
        if not path.is_dir():
            raise SavedMapsNotFoundError(f"maps.{self.name}: map folder not found: {path}")
        return path

    def _files(self, dataset: str) -> tuple[Path, dict[str, Path]]:
        if dataset not in self._index:
            folder = self.folder(dataset)
            files: dict[str, Path] = {}
            rank = {s: i for i, s in enumerate(self.suffixes)}
            for p in sorted(folder.iterdir()):
                suf = p.suffix.lower()
                if not p.is_file() or suf not in rank:
                    continue
                stem = p.stem
                if self.name_suffix:
                    if not stem.endswith(self.name_suffix):
                        continue
                    stem = stem[: -len(self.name_suffix)]
                if stem not in files or rank[suf] < rank[files[stem].suffix.lower()]:
                    files[stem] = p
            if not files:
                present = {p.suffix.lower() for p in folder.iterdir() if p.is_file()}
                other = sorted(present & {".npy", *DEFAULT_SUFFIXES} - set(self.suffixes))
                if present & set(self.suffixes):  # maps of the right type, none ending with name_suffix
                    hint = (f"; no file name ends with name_suffix {self.name_suffix!r}: check "
                            f"maps.{self.name}.name_suffix")
                elif other:
                    hint = (f"; it holds {', '.join(other)} files: add +maps.{self.name}.suffixes="
                            f"[{','.join(other)}]")
                else:
                    hint = ""
                raise SavedMapsNotFoundError(f"maps.{self.name}: no map files ({', '.join(self.suffixes)}) in "
                                             f"{folder}{hint}")
            self._index[dataset] = (folder, files)
        return self._index[dataset]

    def check(self, dataset: str, names: Sequence[str]) -> None:
        """Raise one error listing every image of ``dataset`` without a map."""
        folder, files = self._files(dataset)
        missing = [n for n in names if n not in files]
        if missing:
            raise SavedMapsNotFoundError(
                f"maps.{self.name}: {len(missing)} of {len(names)} images of {dataset} have no map in {folder} "
                f"(expected <stem>{self.name_suffix}{{{','.join(self.suffixes)}}}): {missing[:10]}"
            )

    def load(self, dataset: str, name: str, shape: tuple[int, int]) -> np.ndarray:
        """The in-focus probability map of image ``name`` of ``dataset`` at the GT ``shape`` (float32)."""
        folder, files = self._files(dataset)
        if name not in files:
            raise SavedMapsNotFoundError(f"maps.{self.name}: no map for image {name!r} of {dataset} in {folder}")
        value = read_map(files[name])
        if value.shape != tuple(shape):
            value = cv2.resize(value, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        focus = value if self.polarity == "white_in_focus" else 1.0 - value
        return np.clip(focus, 0.0, 1.0).astype(np.float32)
