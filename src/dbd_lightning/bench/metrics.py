"""Throughput of the DBD metrics versus an "authors' style" numpy loop.

``bench_metrics()`` times, on synthetic EBD-size maps (default 1024 x 1600):

* **ours**: the default table collection (``build_dbd_metrics()``: MAE, F-beta,
  IoU) plus a 256-threshold :class:`PrecisionRecallCurve`, fed one image per
  ``update`` (as an evaluation loop over differently sized images would), inside
  :func:`~dbd_lightning.ops.cpu_memory.reuse_freed_memory` as ``eval`` and the
  test phase of ``train`` run them (``ours_plain_*``: without it, every temporary of
  a full-size map on fresh, zero-filled pages: ~50 MB of page faults per image);
* **baseline**: the loop the official evaluation scripts use, one image at a
  time in numpy: MAE, then ``for t in range(256)``: binarise, count TP/FP/FN,
  precision/recall/F at that threshold (the same 256 thresholds, so both curves
  are compared for equality as a correctness check).

Run ``python -m dbd_lightning.bench.metrics`` (``--n 1605`` for a full EBD-size
pass).  Timings depend on the machine; nothing asserts on them.
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as TF

from ..metrics.collection import build_dbd_metrics
from ..metrics.curves import PrecisionRecallCurve
from ..ops.cpu_memory import reuse_freed_memory
from ..utils.timer import once


def make_maps(n: int, size: tuple[int, int], seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` smooth random (in-focus probability, binary GT) pairs of shape ``(1, 1, H, W)``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        low = torch.rand(1, 1, 16, 25, generator=gen)
        gt = TF.interpolate(low, size=size, mode="bilinear", align_corners=False) > 0.5
        noise = TF.interpolate(torch.rand(1, 1, 64, 100, generator=gen), size=size, mode="bilinear")
        # overlapping classes: errors at every threshold, curves not trivial
        pred = (0.2 + 0.6 * gt.float() + 0.8 * (noise - 0.5)).clamp_(0, 1)
        out.append((pred, gt))
    return out


def baseline_numpy(pred: np.ndarray, gt: np.ndarray, beta2: float = 0.3) -> dict[str, np.ndarray]:
    """Authors' style per-image evaluation: a numpy loop over 256 thresholds.

    ``pred`` is the blur probability quantised to uint8 (0..255), ``gt`` the bool
    blur mask; at threshold ``t`` a pixel is positive where ``pred >= t``.
    """
    p = pred.astype(np.float64) / 255.0
    mae = np.abs(p - gt).mean()
    prec = np.zeros(256)
    rec = np.zeros(256)
    fm = np.zeros(256)
    for t in range(256):
        b = pred >= t
        tp = np.sum(b & gt)
        fp = np.sum(b & ~gt)
        fn = np.sum(~b & gt)
        prec[t] = tp / (tp + fp) if tp + fp > 0 else 0.0
        rec[t] = tp / (tp + fn) if tp + fn > 0 else 0.0
        den = beta2 * prec[t] + rec[t]
        fm[t] = (1 + beta2) * prec[t] * rec[t] / den if den > 0 else 0.0
    return dict(mae=mae, precision=prec, recall=rec, fbeta=fm)


def _time_ours(maps, repeat_to: int, device: str) -> tuple[float, torch.Tensor, dict]:
    coll = build_dbd_metrics().to(device)
    pr = PrecisionRecallCurve().to(device)
    maps = [(p.to(device), g.to(device)) for p, g in maps]
    # warm-up on one full-size map (allocator, lazy init), then reset
    coll.update(*maps[0])
    pr.update(*maps[0])
    coll.reset()
    pr.reset()

    def run():
        for i in range(repeat_to):
            p, g = maps[i % len(maps)]
            coll.update(p, g)
            pr.update(p, g)
        return {k: float(v) for k, v in coll.compute().items()}, pr.compute()[0]

    (values, prec), seconds = once(run, sync=torch.cuda.synchronize if device.startswith("cuda") else None)
    return seconds, prec.cpu(), values


def bench_metrics(
    n: int = 20,
    size: tuple[int, int] = (1024, 1600),
    baseline_n: int | None = 3,
    pool: int = 20,
    device: str = "cpu",
    seed: int = 0,
    num_threads: int | None = None,
) -> dict:
    """Images/s of our metrics vs the numpy threshold loop, and the speed-up.

    Args:
        n: images pushed through our metrics (maps are cycled from a pool of
            ``min(n, pool)`` distinct ones, so ``n = 1605`` needs no 1605 maps in memory).
        size: ``(H, W)`` of every map.
        baseline_n: images for the (slow) numpy baseline; ``None`` = ``min(n, pool)``.
        device: where our metrics run.
        num_threads: torch CPU threads for our metrics during the run (restored
            afterwards); ``None`` keeps the current setting.  numpy's baseline
            loop is single-threaded either way.

    Returns:
        dict with ``ours_images_per_s``, ``baseline_images_per_s``, ``speedup``
        (``ours_plain_images_per_s`` / ``plain_speedup``: without heap reuse),
        ``ours_seconds``, ``baseline_seconds``, ``est_seconds_1605`` (our time for
        1605 images at the measured rate), ``max_abs_curve_diff`` (our per-image
        averaged precision curve vs the baseline's on the baseline images) and the
        table values.
    """
    maps = make_maps(min(n, pool), size, seed)
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        threads = torch.get_num_threads()
        plain_s, _, _ = _time_ours(maps, min(n, pool), device)
        with reuse_freed_memory():
            ours_s, _, values = _time_ours(maps, n, device)
    finally:
        torch.set_num_threads(old_threads)

    nb = min(n, pool) if baseline_n is None else min(baseline_n, len(maps))
    # inputs of the baseline: blur maps as 8-bit images (as read from PNG files)
    b_in = []
    for p, g in maps[:nb]:
        blur = (1.0 - p[0, 0]).mul(255).add(0.5).floor().clamp(0, 255).to(torch.uint8).numpy()
        b_in.append((blur, ~g[0, 0].numpy()))
    ref, base_s = once(lambda: [baseline_numpy(bp, bg) for bp, bg in b_in])

    # correctness: our per-image precision curve on the same images
    _, prec, _ = _time_ours(maps[:nb], nb, "cpu")
    ref_prec = np.mean([r["precision"] for r in ref], axis=0)
    diff = float(np.abs(prec.double().numpy() - ref_prec).max())

    ours_ips = n / ours_s
    base_ips = nb / base_s
    return dict(
        n=n,
        size=tuple(size),
        device=device,
        threads=threads,
        ours_seconds=ours_s,
        ours_images_per_s=ours_ips,
        ours_plain_images_per_s=min(n, pool) / plain_s,
        plain_speedup=min(n, pool) / plain_s / base_ips,
        baseline_n=nb,
        baseline_seconds=base_s,
        baseline_images_per_s=base_ips,
        speedup=ours_ips / base_ips,
        est_seconds_1605=1605 / ours_ips,
        max_abs_curve_diff=diff,
        values=values,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--baseline-n", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    res = bench_metrics(a.n, (a.height, a.width), a.baseline_n, device=a.device, num_threads=a.threads)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
