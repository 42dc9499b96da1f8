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

Every file is written atomically (:mod:`dbd_lightning.utils.atomic`). ``meta.json``
is written first (``"complete": false``, the names about to be written) and again
at the end (``"complete": true``): it is the record of what synth wrote, so
``overwrite=true`` removes exactly those files and never a user's
(:mod:`.output`), and after a full disk the same command resumes the folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...ops.cpu_memory import reuse_freed_memory
from ...utils.atomic import ensure_dir, write_atomic, write_bytes, write_json, write_text
from .config import RenderConfig, resolve_config
from .output import GENERATOR, INFO, META, prepare
from .renderer import SyntheticRenderer, sample_name

log = logging.getLogger(__name__)

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


def _imwrite(path: Path, array: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix, array)
    if not ok:
        raise OSError(f"could not encode {path}")
    write_bytes(path, memoryview(buf))


def write_sample(out_dir: str | Path, name: str, sample: Mapping[str, np.ndarray]) -> None:
    """Write one rendered ``sample`` under ``out_dir`` with the :data:`LAYOUT`."""
    out = Path(out_dir)
    _imwrite(out / "image" / f"{name}.png", np.ascontiguousarray(sample["image"][..., ::-1]))
    _imwrite(out / "gt" / f"{name}.png", (sample["mask"] > 0).astype(np.uint8) * 255)
    depth16 = np.round(np.clip(sample["depth"], 0.0, 1.0) * 65535.0).astype(np.uint16)
    _imwrite(out / "depth" / f"{name}.png", depth16)
    write_atomic(out / "radius" / f"{name}.npy", lambda f: np.save(f, sample["radius"].astype(np.float32)))
    _imwrite(out / "edge" / f"{name}.png", (sample["dof_edge"] > 0).astype(np.uint8) * 255)
    _imwrite(out / "edge_type" / f"{name}.png", sample["edge_type"].astype(np.uint8))


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

    Refuses a folder synth did not write (even with ``overwrite``), and its own
    dataset unless ``overwrite`` (then only the files its ``meta.json`` lists are
    replaced) or it is this request's unfinished run (resumed). Returns the output path.
    """
    n, start = int(n), int(start)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    cfg = resolve_config(preset, size=size, **overrides)
    renderer = SyntheticRenderer(cfg, seed=seed)
    out = Path(out_dir)
    names = [sample_name(renderer.seed, i) for i in range(start, start + n)]
    meta = {
        "generator": GENERATOR,
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
    kept = prepare(out, overwrite, meta, names, LAYOUT)
    if kept:
        log.warning("synth: %d file(s) in %s that synth did not write are kept (e.g. %s)", len(kept), out, kept[0])
    for sub in LAYOUT:
        ensure_dir(out / sub)
    write_json(out / META, {**meta, "complete": False})  # first: the record of what synth is about to write
    lines = []
    with reuse_freed_memory():
        for i, name in zip(_progress(range(start, start + n), n, progress), names, strict=True):
            sample, info = renderer.render_with_info(i)
            write_sample(out, name, sample)
            lines.append(json.dumps({"name": name, **info}) + "\n")
    write_text(out / INFO, "".join(lines))
    write_json(out / META, {**meta, "complete": True})
    return out
