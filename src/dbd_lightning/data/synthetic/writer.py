"""Write rendered synthetic samples to disk in a benchmark-like layout.

Layout of ``out_dir`` (``NAME = synth_<seed>_<index:06d>``)::

    image/NAME.png      uint8 RGB image
    gt/NAME.png         focus mask, 8-bit, white (255) = in focus, 0 = blurred
    depth/NAME.png      16-bit, round(depth_norm * 65535); metres =
                        lo + depth_norm * (hi - lo) with (lo, hi) = config depth_range_m
    radius/NAME.npy     float32 blur radius map (px)
    edge/NAME.png       DOF edge (boundary of the focus mask), 0/255
    edge_type/NAME.png  0 none, 1 pattern edge, 2 depth edge (raw values)
    meta.json           config, seed, n, names, polarity "white_in_focus", encodings
    info.jsonl          one JSON line per sample: drawn camera/scene parameters

The ``image/`` + ``gt/`` pair matches the DUT test layout, so benchmark loaders
read it too.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...ops.cpu_memory import reuse_freed_memory
from .config import RenderConfig, resolve_config
from .renderer import SyntheticRenderer, sample_name

__all__ = ["LAYOUT", "write_dataset", "write_sample"]

#: Sub-folder -> file suffix.
LAYOUT: dict[str, str] = {
    "image": ".png",
    "gt": ".png",
    "depth": ".png",
    "radius": ".npy",
    "edge": ".png",
    "edge_type": ".png",
}
_FILES = ("meta.json", "info.jsonl")


def _imwrite(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")


def write_sample(out_dir: str | Path, name: str, sample: Mapping[str, np.ndarray]) -> None:
    """Write one rendered ``sample`` under ``out_dir`` with the :data:`LAYOUT`."""
    out = Path(out_dir)
    _imwrite(out / "image" / f"{name}.png", np.ascontiguousarray(sample["image"][..., ::-1]))
    _imwrite(out / "gt" / f"{name}.png", (sample["mask"] > 0).astype(np.uint8) * 255)
    depth16 = np.round(np.clip(sample["depth"], 0.0, 1.0) * 65535.0).astype(np.uint16)
    _imwrite(out / "depth" / f"{name}.png", depth16)
    np.save(out / "radius" / f"{name}.npy", sample["radius"].astype(np.float32))
    _imwrite(out / "edge" / f"{name}.png", (sample["dof_edge"] > 0).astype(np.uint8) * 255)
    _imwrite(out / "edge_type" / f"{name}.png", sample["edge_type"].astype(np.uint8))


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; pass overwrite=true to replace its synthetic dataset")
        # remove only what this writer creates, never unrelated files
        for sub in LAYOUT:
            if (out / sub).is_dir():
                shutil.rmtree(out / sub)
        for f in _FILES:
            if (out / f).is_file():
                (out / f).unlink()
    for sub in LAYOUT:
        (out / sub).mkdir(parents=True, exist_ok=True)


def _progress(iterable: Iterable[int], total: int, enabled: bool) -> Iterable[int]:
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the environment
        return iterable
    return tqdm(iterable, total=total, desc="synth", unit="img")


def write_dataset(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    preset: str | RenderConfig | Mapping[str, Any] = "random",
    size: int | Sequence[int] | None = 320,
    overwrite: bool = False,
    progress: bool = True,
    start: int = 0,
    **overrides: Any,
) -> Path:
    """Render samples ``start .. start+n-1`` and write them to ``out_dir``.

    Refuses a non-empty ``out_dir`` unless ``overwrite`` (then only the writer's
    own sub-folders and files are replaced). Returns the output path.
    """
    n, start = int(n), int(start)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    cfg = resolve_config(preset, size=size, **overrides)
    renderer = SyntheticRenderer(cfg, seed=seed)
    out = Path(out_dir)
    _prepare(out, overwrite)
    names = []
    with open(out / "info.jsonl", "w", encoding="utf-8") as info_file, reuse_freed_memory():
        for i in _progress(range(start, start + n), n, progress):
            sample, info = renderer.render_with_info(i)
            name = sample_name(renderer.seed, i)
            write_sample(out, name, sample)
            info_file.write(json.dumps({"name": name, **info}) + "\n")
            names.append(name)
    meta = {
        "generator": "dbd_lightning.synth",
        "preset": cfg.name,
        "config": cfg.to_dict(),
        "seed": renderer.seed,
        "n": n,
        "start": start,
        "size": list(cfg.size),
        "polarity": "white_in_focus",
        "layout": {sub: f"{sub}/NAME{suffix}" for sub, suffix in LAYOUT.items()},
        "encodings": {
            "gt": "uint8 PNG, 255 = in focus (radius <= r0), 0 = blurred",
            "depth": "uint16 PNG, value / 65535 = (d - depth_range_m[0]) / (depth_range_m[1] - depth_range_m[0])",
            "radius": "float32 .npy, rendered blur (PSF) radius in pixels",
            "edge": "uint8 PNG, 255 = boundary of the focus mask",
            "edge_type": "uint8 PNG, 0 none, 1 pattern edge, 2 depth edge",
        },
        "names": names,
    }
    with open(out / "meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    return out
