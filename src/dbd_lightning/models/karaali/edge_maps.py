"""Precomputed edge maps for the Karaali pipeline (the authors' ``-e`` option), matched to images by file stem.

An image ``<stem>.<ext>`` takes the edge map in the folder named, first match wins:
``<stem>.*``, ``edge_<stem>.*``, or for ``image_<id>`` also ``edge_<id>.*`` (the authors'
naming: ``image_01.png`` / ``edge_01.png``). A pixel that is nonzero in any channel is an edge
(:func:`~dbd_lightning.data.masks.read_edges`): the authors' 0/255 maps read the same as in their
code (``== 255``), their colour visualisations (edges in colours on black) as drawn, a 0/1 map
as its 1s. Maps whose pixels have no single reading (JPEG noise, transparency, edges drawn on a
non-black background) are named before anything runs (:func:`match_edge_maps`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ...utils.errors import UserError

__all__ = ["EdgeMapError", "edge_map_names", "find_edge_map", "match_edge_maps", "precomputed_edge_maps",
           "read_edge_map"]

_ORIENTATION = 0x0112  # EXIF tag; 5-8 = rotated by 90 degrees (read_rgb applies it)


class EdgeMapError(UserError, ValueError):
    """A missing, unreadable or wrongly sized precomputed edge map (the message names the image)."""


def edge_map_names(stem: str) -> list[str]:
    """The edge-map stems tried for an image stem, in order."""
    names = [stem, f"edge_{stem}"]
    if stem.startswith("image_") and len(stem) > len("image_"):
        names.append("edge_" + stem[len("image_"):])
    return names


def _index(edges_dir: Path) -> dict[str, Path]:
    from ...data.io import list_images

    if not edges_dir.is_dir():
        raise EdgeMapError(f"edges={edges_dir}: not a folder (expected a folder of edge maps named like the images)")
    found: dict[str, Path] = {}
    for p in list_images(edges_dir):
        found.setdefault(p.stem, p)
    return found


def find_edge_map(edges_dir: str | Path, stem: str, index: dict[str, Path] | None = None) -> Path | None:
    """The edge map of the image ``stem`` in ``edges_dir`` (None if there is none)."""
    index = _index(Path(edges_dir)) if index is None else index
    return next((index[n] for n in edge_map_names(stem) if n in index), None)


def _size(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image file as :func:`~dbd_lightning.data.io.read_rgb` returns it (EXIF-rotated)."""
    with Image.open(path) as im:
        w, h = im.size
        if im.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):
            w, h = h, w
    return h, w


def match_edge_maps(edges_dir: str | Path, images: Sequence[Path]) -> dict[Path, Path]:
    """``{image: edge map}`` for every image, checked before anything runs.

    Raises :class:`EdgeMapError` naming every image without an edge map, whose edge map's
    size differs from the image's, or whose edge map has no single reading (:func:`_content_problem`).
    """
    edges_dir = Path(edges_dir).expanduser()
    index = _index(edges_dir)
    out: dict[Path, Path] = {}
    missing, wrong, unusable = [], [], []
    for image in images:
        edge = find_edge_map(edges_dir, image.stem, index)
        if edge is None:
            missing.append(f"{image} (looked for {', '.join(n + '.*' for n in edge_map_names(image.stem))})")
            continue
        try:
            si, se = _size(image), _size(edge)
        except OSError as exc:
            wrong.append(f"{image}: cannot read the size of {image.name} or {edge}: {exc}")
            continue
        if si != se:
            wrong.append(f"{image}: image {si[1]}x{si[0]} but edge map {edge} is {se[1]}x{se[0]} (WxH)")
            continue
        problem = _content_problem(edge)
        if problem:
            unusable.append(f"{image}: {problem}")
            continue
        out[image] = edge
    problems = []
    if missing:
        problems.append(f"no edge map in {edges_dir} for {len(missing)} image(s):\n  " + "\n  ".join(missing))
    if wrong:
        problems.append("edge map size differs from the image for:\n  " + "\n  ".join(wrong))
    if unusable:
        problems.append("edge map content cannot be read as edges for:\n  " + "\n  ".join(unusable))
    if problems:
        raise EdgeMapError("\n".join(problems))
    return out


def _content_problem(path: Path) -> str | None:
    """Why the edge map at ``path`` cannot be read as edges (None when it can); decodes it once."""
    from ...data.io import ImageReadError
    from ...data.masks import read_edges

    try:
        read_edges(path)
    except (ImageReadError, OSError) as exc:  # MaskContentError is an ImageReadError
        return str(exc)
    return None


def read_edge_map(path: str | Path, shape: tuple[int, int] | None = None, image: str | Path | None = None) -> np.ndarray:
    """A precomputed edge map as a bool ``(H, W)`` array, nonzero (any channel) = edge; ``shape`` checks its size
    against the image's. A map with no single reading raises :class:`EdgeMapError` naming it."""
    from ...data.masks import MaskContentError, read_edges

    try:
        edges = read_edges(path)
    except MaskContentError as exc:
        raise EdgeMapError(f"{image or 'image'}: {exc}") from exc
    if shape is not None and edges.shape != tuple(shape):
        raise EdgeMapError(f"{image or 'image'}: edge map {path} is {edges.shape[1]}x{edges.shape[0]}, the image "
                           f"{shape[1]}x{shape[0]} (WxH)")
    return edges


def precomputed_edge_maps(edges_dir: str | Path | None, predictor, name: str | None,
                          images: Sequence[Path]) -> dict[Path, Path] | None:
    """``predict ... edges=DIR``: the edge map of every input (:func:`match_edge_maps`), None without ``edges``.

    Raises :class:`EdgeMapError` when the predictor takes no edge maps (only pipelines with
    ``accepts_edges``, i.e. ``model=karaali*``) or when an image has no (or a wrongly sized) edge map.
    """
    if edges_dir is None or str(edges_dir) == "":
        return None
    if not getattr(predictor, "accepts_edges", False):
        raise EdgeMapError(f"edges={edges_dir}: the predictor {name} takes no edge maps "
                           "(edges= is for the Karaali pipeline: model=karaali or model=karaali_authors_code)")
    return match_edge_maps(edges_dir, images)
