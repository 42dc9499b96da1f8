"""The one timer of every benchmark: median of N calls after a warm-up, ratios to a reference run.

* :func:`measure`: ``warmup`` untimed calls, then ``repeats`` timed calls of one function, or of
  several functions interleaved (A, B, C, A, B, C, ...: a machine shared with other jobs slows
  every variant alike, so their ratios stay comparable). Each call is timed in wall-clock
  (``time.perf_counter``) and in process CPU time (``time.process_time``: other jobs inflate the
  first, not the second). ``sync`` (e.g. ``torch.cuda.synchronize``) runs before and after each
  timed call, so asynchronous device work is counted.
* :func:`once`: a one-off cost (one call, no warm-up) and the call's result.
* :func:`summarize`: medians, minima and their ratios to a reference variant measured in the same
  process (the JSON block of the interleaved cases).

The bench runner (:mod:`dbd_lightning.bench.runner`, ``make bench``) writes every case's dict to one JSON file.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Timing", "measure", "once", "summarize"]


@dataclass
class Timing:
    """Seconds of the timed calls of one function (``wall``, ``cpu``) and the last call's return value."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    result: Any = None

    @property
    def median(self) -> float:
        """Median wall-clock seconds per call."""
        return statistics.median(self.wall)

    @property
    def min(self) -> float:
        """Fastest wall-clock call (seconds)."""
        return min(self.wall)

    @property
    def cpu_median(self) -> float:
        """Median process CPU seconds per call."""
        return statistics.median(self.cpu)


def _timed(fn: Callable[[], Any], timing: Timing, sync: Callable[[], Any] | None) -> None:
    if sync is not None:
        sync()
    t0, c0 = time.perf_counter(), time.process_time()
    timing.result = fn()
    if sync is not None:
        sync()
    timing.wall.append(time.perf_counter() - t0)
    timing.cpu.append(time.process_time() - c0)


def measure(fns: Callable[[], Any] | Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1,
            sync: Callable[[], Any] | None = None) -> Timing | dict[str, Timing]:
    """Time ``repeats`` calls of ``fns`` after ``warmup`` untimed ones.

    ``fns``: one function (returns a :class:`Timing`) or a mapping name -> function (returns a
    dict of :class:`Timing`; the functions are called interleaved, in the mapping's order, both
    during the warm-up and the timed repeats).
    """
    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    single = callable(fns)
    named = {"": fns} if single else dict(fns)
    for _ in range(int(warmup)):
        for fn in named.values():
            fn()
    timings = {k: Timing() for k in named}
    for _ in range(int(repeats)):
        for k, fn in named.items():
            _timed(fn, timings[k], sync)
    return timings[""] if single else timings


def once(fn: Callable[[], Any], sync: Callable[[], Any] | None = None) -> tuple[Any, float]:
    """``(result, wall seconds)`` of one call without warm-up (a one-off cost: export, compile, first step)."""
    t = measure(fn, 1, warmup=0, sync=sync)
    return t.result, t.median


def summarize(timings: Mapping[str, Timing], reference: str, unit: float = 1e3, unit_name: str = "ms") -> dict:
    """``median_<unit>``, ``min_<unit>`` of every variant and ``ratio_median`` / ``ratio_min``: each
    variant's time over ``reference``'s (measured in the same process). ``unit``: seconds -> unit."""
    if reference not in timings:
        raise ValueError(f"reference {reference!r} is not among the variants {sorted(timings)}")
    med = {k: t.median for k, t in timings.items()}
    low = {k: t.min for k, t in timings.items()}
    return {
        f"median_{unit_name}": {k: v * unit for k, v in med.items()},
        f"min_{unit_name}": {k: v * unit for k, v in low.items()},
        "ratio_median": {k: v / med[reference] for k, v in med.items()},
        "ratio_min": {k: v / low[reference] for k, v in low.items()},
    }
