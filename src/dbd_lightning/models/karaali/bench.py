"""Benchmarks of Karaali's pipeline (s / image) and of the domain-transform filter (ms).

The test image is a 360x360 render of the synthetic thin-lens renderer (the Lytro
size; no file needed) or ``image=<path>``. Networks have random weights: the cost
does not depend on them, only on the number of edge pixels, which is reported.
Both wall time and process CPU time are given (other jobs on a shared machine
inflate the wall time, not the CPU time).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

__all__ = ["bench_pipeline", "bench_dt_filter"]


def _image(size: int, image: str | None) -> np.ndarray:
    if image:
        from ...data.io import read_rgb

        return read_rgb(image)
    from ...data.synthetic.renderer import SyntheticRenderer, resolve_config

    return SyntheticRenderer(resolve_config("shallow", size=size), seed=0).render(0)["image"]


def _time(fn, repeats: int) -> tuple[float, float]:
    wall, cpu = [], []
    for _ in range(int(repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu))


def bench_pipeline(size: int = 360, repeats: int = 3, precision: str = "float32", device: str = "cpu",
                   image: str | None = None, psi: float = 100.0, threads: int | None = None) -> dict[str, Any]:
    """Seconds per image of the full pipeline (edges, E-NET + B-NET, DT guide + propagation, threshold).

    ``threads``: torch intra-op threads (None = the runner's setting); 1 is the robust
    measure on a shared, oversubscribed machine (idle OpenMP threads spin there).
    """
    from .pipeline import KaraaliPipeline

    if threads:
        torch.set_num_threads(int(threads))
    rgb = _image(size, image)
    torch.manual_seed(0)
    pipe = KaraaliPipeline(random_init=True, device=device, precision=precision, psi=psi)
    pipe.predict_image(rgb)  # warm-up
    wall, cpu = _time(lambda: pipe.predict_image(rgb), repeats)
    edges = pipe.edges(rgb)
    t_edges = _time(lambda: pipe.edges(rgb), 1)[0]
    t_nets = _time(lambda: pipe.classify_edges(rgb, edges), 1)[0]
    zeros = np.zeros(edges.shape, np.float32)
    t_prop = _time(lambda: pipe.propagate(rgb, zeros, edges.astype(np.float32), zeros), 1)[0]
    return {"s_per_image": wall, "cpu_s_per_image": cpu, "size": list(rgb.shape[:2]), "precision": precision,
            "device": device, "threads": torch.get_num_threads(), "edge_pixels": int(edges.sum()),
            "edge_fraction": float(edges.mean()), "edges_s": t_edges, "networks_s": t_nets,
            "propagation_s": t_prop, "paper_s_per_image": 4.55}


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

    run()
    wall, cpu = _time(run, repeats)
    return {"ms": wall * 1e3, "cpu_ms": cpu * 1e3, "size": size, "channels": channels, "iterations": iterations,
            "device": device, "threads": torch.get_num_threads()}
