"""Benchmarks (``make bench`` -> JSON): the runner and its case registry (:mod:`.runner`), the cases that
belong to no single paper (DFFNet as the suite's workhorse, prediction and backends, metrics, renderer,
precision). Every case times with the one timer, :mod:`dbd_lightning.utils.timer` (kept below the papers, so
that their own cases use it without importing ``bench``). A paper's own cases
live in its folder (``models/<paper>/bench.py``) and are registered in :data:`.runner.CASES`.

    python -m dbd_lightning.bench --out bench/results.json [--cases dffnet_infer_resnet18 ...] [--quick]
"""

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

from ..utils.timer import Timing, measure, summarize
from .runner import CASES, cli, main, run_case

__all__ = ["CASES", "Timing", "cli", "main", "measure", "run_case", "summarize"]
