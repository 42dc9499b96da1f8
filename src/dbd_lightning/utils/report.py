"""Results tables and metrics files."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from .atomic import write_json

TABLE_METRICS = (("mae", "MAE"), ("fbeta", "F-beta"), ("iou", "IoU"))


def scalar_metrics(metrics: Mapping) -> dict[str, float]:
    out = {}
    torch = sys.modules.get("torch")  # a tensor exists only where torch was imported: never import it here
    for k, v in metrics.items():
        if torch is not None and isinstance(v, torch.Tensor) and v.numel() == 1:
            out[k] = float(v)
        elif isinstance(v, int | float):
            out[k] = float(v)
    return out


def results_table(metrics: Mapping[str, float], stage: str = "test", convention: str = "") -> str:
    """Markdown table, one row per dataset, from ``<stage>/<dataset>/<metric>`` keys."""
    rows: dict[str, dict[str, float]] = {}
    pattern = re.compile(rf"^{stage}/(?P<data>[^/]+)/(?P<metric>[^/]+)$")
    for key, value in metrics.items():
        m = pattern.match(key)
        if m:
            rows.setdefault(m["data"], {})[m["metric"]] = value
    if not rows:
        return f"(no {stage} metrics)"
    extra = sorted({k for r in rows.values() for k in r} - {k for k, _ in TABLE_METRICS} - {"loss"})
    cols = [(k, name) for k, name in TABLE_METRICS] + [(k, k) for k in extra]
    lines = ["| dataset | " + " | ".join(n for _, n in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for data, r in rows.items():
        lines.append(f"| {data} | " + " | ".join(f"{r[k]:.4f}" if k in r else "-" for k, _ in cols) + " |")
    if convention:
        lines.append("")
        lines.append(convention)
    return "\n".join(lines)


def write_metrics(path: str | Path, metrics: Mapping[str, float]) -> None:
    """``metrics.json`` (sorted keys), written atomically."""
    write_json(Path(path), dict(sorted(metrics.items())))
