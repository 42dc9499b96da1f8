"""Throughput benchmark of the synthetic renderer (single process; case ``synthetic_renderer*``)."""

from __future__ import annotations

from typing import Any

from ..data.synthetic.dataset import SyntheticDefocusDataset
from ..ops.cpu_memory import reuse_freed_memory
from ..utils.timer import once

__all__ = ["bench_renderer"]


def bench_renderer(
    n: int = 50, size: int = 320, preset: str = "random", seed: int = 0, warmup: int = 3
) -> dict[str, Any]:
    """Render ``n`` samples of ``preset`` at ``size`` and time them (after ``warmup`` samples).

    The warm-up loads the bundled photos and fills the kernel caches, as a persistent
    DataLoader worker does once; a photographic renderer also segments all its photos
    first (``prepare``), timed apart as ``setup_s`` (0 for the collage presets). Timed as
    a loader worker runs (inside :func:`~dbd_lightning.ops.cpu_memory.reuse_freed_memory`):
    ``samples_per_s``, ``ms_per_sample``; ``plain_samples_per_s`` without heap reuse
    (every large temporary on fresh pages); ``n``, ``size``, ``preset``.
    """
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    renderer = SyntheticDefocusDataset(length=1, seed=seed, preset=preset, size=size).renderer  # photographic too

    prepare = getattr(renderer, "prepare", None)  # the photographic renderer's one-time segmentation
    setup_s = once(prepare)[1] if prepare is not None else 0.0

    def render_all() -> None:  # samples are dropped as they come (a loader worker keeps none)
        for i in range(int(n)):
            renderer.render(i)

    def run() -> float:
        for i in range(int(warmup)):  # other indices than the timed ones
            renderer.render(10_000_000 + i)
        return once(render_all)[1]

    plain = run()
    with reuse_freed_memory():  # as in a DataLoader worker (reuse_freed_memory_in_worker)
        elapsed = run()
    return {
        "samples_per_s": n / elapsed,
        "ms_per_sample": 1000.0 * elapsed / n,
        "plain_samples_per_s": n / plain,
        "setup_s": setup_s,
        "n": int(n),
        "size": size,
        "preset": preset,
    }
