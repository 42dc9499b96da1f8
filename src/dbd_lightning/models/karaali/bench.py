"""Benchmarks of Karaali's pipeline (s / image) and of the domain-transform filter (ms).

The test image is a 360x360 render of the synthetic thin-lens renderer (the Lytro
size; no file needed) or ``image=<path>``; the pipeline case also times the bundled
Lytro ``image_05`` (a real photo with many edges). Networks have random weights: the
cost does not depend on their values, only on the number of edge pixels (and of
pattern edges, where B-NET runs), which are reported.
Both wall time and process CPU time are given (other jobs on a shared machine
inflate the wall time, not the CPU time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...utils.timer import measure

__all__ = ["bench_pipeline", "bench_dt_filter"]


def _image(size: int, image: str | None) -> np.ndarray:
    if image:
        from ...data.io import read_rgb

        return read_rgb(image)
    from ...data.synthetic import SyntheticRenderer, resolve_config

    return SyntheticRenderer(resolve_config("shallow", size=size), seed=0).render(0)["image"]


#: the densest of the bundled Lytro images (19,063 hue-Canny edge pixels, 14.7 %)
LYTRO_05 = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "real_mini" / "lytro_sample" / "image_05.png"


def _time(fn, repeats: int, warmup: int = 0) -> tuple[float, float]:
    """Median wall and process CPU seconds of ``repeats`` calls (:func:`~dbd_lightning.utils.timer.measure`)."""
    t = measure(fn, repeats, warmup)
    return t.median, t.cpu_median


def _pipeline_times(pipe, rgb: np.ndarray, repeats: int) -> dict[str, Any]:
    from ...ops.cpu_memory import reuse_freed_memory

    wall, cpu = _time(lambda: pipe.predict_image(rgb), repeats, warmup=1)
    edges = pipe.edges(rgb)
    t_edges = _time(lambda: pipe.edges(rgb), 1)
    with reuse_freed_memory(pipe.reuse_memory):  # the stages as estimate() runs them
        _, _, depth = pipe.classify_edges(rgb, edges, depth_radius=False)
        t_nets = _time(lambda: pipe.classify_edges(rgb, edges, depth_radius=False), 1)
        zeros = np.zeros(edges.shape, np.float32)
        t_prop = _time(lambda: pipe.propagate(rgb, zeros, edges.astype(np.float32), zeros), 1)
        # a loop over images inside one reuse_freed_memory(): no page faults after the first image
        wall_loop, cpu_loop = _time(lambda: pipe.predict_image(rgb), repeats)
    return {"s_per_image": wall, "cpu_s_per_image": cpu, "size": list(rgb.shape[:2]),
            "edge_pixels": int(edges.sum()), "edge_fraction": float(edges.mean()),
            "depth_edge_fraction": float(depth.mean()) if depth.size else 0.0,
            "edges_s": t_edges[0], "networks_s": t_nets[0], "propagation_s": t_prop[0],
            "edges_cpu_s": t_edges[1], "networks_cpu_s": t_nets[1], "propagation_cpu_s": t_prop[1],
            "in_loop_s_per_image": wall_loop, "in_loop_cpu_s_per_image": cpu_loop}


def bench_pipeline(size: int = 360, repeats: int = 3, precision: str = "float32", device: str = "cpu",
                   image: str | None = None, psi: float = 100.0, threads: int | None = None,
                   lytro: bool = True, **pipeline_kw: Any) -> dict[str, Any]:
    """Seconds per image of the full pipeline (edges, E-NET + B-NET, DT guide + propagation, threshold).

    Random weights, E-NET's f1 streams shared with B-NET as in the trained / published
    model (one set of the three streams is evaluated). ``threads``: torch intra-op threads
    (None = the runner's setting); 1 is the robust measure on a shared, oversubscribed
    machine (idle OpenMP threads spin there). ``lytro``: also time the bundled Lytro
    ``image_05`` (key ``lytro_image_05``) when the test fixture is there. ``pipeline_kw``:
    extra :class:`KaraaliPipeline` arguments (``sparse_max``, ``winograd``, ``chunk``, ...).
    Stage times (``*_s`` wall, ``*_cpu_s`` process CPU) run inside one
    :func:`~dbd_lightning.ops.cpu_memory.reuse_freed_memory` block, as in ``estimate``;
    ``s_per_image`` is one ``predict_image`` call on its own (it pays its first-touch page
    faults), ``in_loop_*`` one call of a loop of images inside such a block.
    """
    from .pipeline import KaraaliPipeline

    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    pipe = KaraaliPipeline(random_init=True, device=device, precision=precision, psi=psi, **pipeline_kw)
    if pipe.enet is not None:
        pipe.enet.load_f1_from(pipe.bnet)
        pipe.shared_f1 = True
    out = _pipeline_times(pipe, _image(size, image), repeats)
    out.update({"precision": precision, "device": device, "threads": torch.get_num_threads(), "shared_f1": True,
                "wide_stride": pipe.wide_stride, "per_cell": pipe.per_cell,
                "image": image or "synthetic", "paper_s_per_image": 4.55})
    if lytro and image is None and size == 360 and LYTRO_05.is_file():
        out["lytro_image_05"] = _pipeline_times(pipe, _image(size, str(LYTRO_05)), repeats)
    return out


def bench_dt_filter(size: int = 360, repeats: int = 10, channels: int = 2, iterations: int = 5,
                    device: str = "cpu", threads: int | None = None) -> dict[str, Any]:
    """Milliseconds of one recursive DT filter call (``channels`` x size x size, 3-channel guide)."""
    from ...ops.domain_transform import dt_filter

    if threads:
        torch.set_num_threads(int(threads))
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, channels, size, size, generator=g).to(device)
    guide = torch.rand(1, 3, size, size, generator=g).to(device)
    edges = (torch.rand(1, 1, size, size, generator=g) > 0.95).to(device)

    def run() -> None:
        dt_filter(img, guide, size / 8.0, 3.75, iterations, psi=100.0, depth_edges=edges)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    wall, cpu = _time(run, repeats, warmup=1)
    return {"ms": wall * 1e3, "cpu_ms": cpu * 1e3, "size": size, "channels": channels, "iterations": iterations,
            "device": device, "threads": torch.get_num_threads()}
