"""The paper-style comparison table: rows = models, column groups = datasets, MAE / F-beta / IoU.

One results dict ``{model: {dataset: {metric: value}}}`` rendered three ways
(Markdown, CSV, LaTeX) with the metric convention stated under the table. The
best value of each column is marked (bold) using each metric's direction.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence

#: table metrics in order, with their display name and whether lower is better
METRICS: dict[str, tuple[str, bool]] = {
    "mae": ("MAE", True),
    "fbeta": ("F-beta", False),
    "iou": ("IoU", False),
    "max_fbeta": ("max-F", False),
    "adaptive_fbeta": ("adaptive F", False),
}

Results = Mapping[str, Mapping[str, Mapping[str, float]]]


def table_layout(results: Results) -> tuple[list[str], list[str], list[str]]:
    """``(models, datasets, metrics)`` in order of appearance (metrics in :data:`METRICS` order first)."""
    models = list(results)
    datasets: list[str] = []
    found: list[str] = []
    for per_data in results.values():
        for ds, values in per_data.items():
            if ds not in datasets:
                datasets.append(ds)
            for k in values:
                if k not in found:
                    found.append(k)
    metrics = [k for k in METRICS if k in found] + [k for k in found if k not in METRICS]
    return models, datasets, metrics


def best_models(results: Results) -> dict[tuple[str, str], set[str]]:
    """``(dataset, metric) -> models`` holding the best value of that column (ties all count)."""
    _, datasets, metrics = table_layout(results)
    best = {}
    for ds in datasets:
        for m in metrics:
            vals = {name: r.get(ds, {}).get(m) for name, r in results.items()}
            vals = {k: v for k, v in vals.items() if v is not None and not math.isnan(v)}
            if not vals:
                continue
            lower = METRICS.get(m, ("", False))[1]
            target = min(vals.values()) if lower else max(vals.values())
            best[(ds, m)] = {k for k, v in vals.items() if v == target}
    return best


def _label(metric: str) -> str:
    name, lower = METRICS.get(metric, (metric, False))
    return f"{name} {'↓' if lower else '↑'}"


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def markdown_table(results: Results, convention: str = "", digits: int = 4, notes: Sequence[str] = ()) -> str:
    """Markdown: one header cell per ``dataset metric``; best of each column in bold; convention below."""
    models, datasets, metrics = table_layout(results)
    if not models:
        return "(no results)"
    best = best_models(results)
    head = ["model"] + [f"{ds} {_label(m)}" for ds in datasets for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for name in models:
        cells = [name]
        for ds in datasets:
            for m in metrics:
                v = results[name].get(ds, {}).get(m)
                text = _fmt(v, digits)
                cells.append(f"**{text}**" if name in best.get((ds, m), ()) and len(models) > 1 else text)
        lines.append("| " + " | ".join(cells) + " |")
    tail = [t for t in (convention, *notes) if t]
    return "\n".join(lines + ([""] + tail if tail else []))


def csv_table(results: Results, digits: int = 6) -> str:
    """CSV: ``model`` then ``<dataset>/<metric>`` columns (plain numbers, empty when missing)."""
    models, datasets, metrics = table_layout(results)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model"] + [f"{ds}/{m}" for ds in datasets for m in metrics])
    for name in models:
        row = [name]
        for ds in datasets:
            for m in metrics:
                v = results[name].get(ds, {}).get(m)
                row.append("" if v is None or math.isnan(v) else f"{v:.{digits}f}")
        w.writerow(row)
    return buf.getvalue()


def _tex(text: str) -> str:
    """Escape LaTeX special characters of a plain-text cell."""
    text = text.replace("\\", "\x00")
    for ch in "_%&#${}":
        text = text.replace(ch, "\\" + ch)
    for a, b in (("^", r"\^{}"), ("~", r"\~{}"), (">=", r"$\geq$"), ("<=", r"$\leq$")):
        text = text.replace(a, b)
    return text.replace("\x00", r"\textbackslash{}")


def latex_table(results: Results, convention: str = "", digits: int = 3, caption: str = "") -> str:
    """LaTeX (booktabs): a ``\\multicolumn`` group per dataset, best of each column in bold."""
    models, datasets, metrics = table_layout(results)
    best = best_models(results)
    tex_metric = {"mae": r"MAE$\downarrow$", "fbeta": r"$F_\beta\uparrow$", "iou": r"IoU$\uparrow$",
                  "max_fbeta": r"max$F_\beta\uparrow$", "adaptive_fbeta": r"adp$F_\beta\uparrow$"}
    n = len(metrics)
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + ("c" * n) * len(datasets) + "}",
             r"\toprule",
             "Model & " + " & ".join(rf"\multicolumn{{{n}}}{{c}}{{{_tex(ds)}}}" for ds in datasets) + r" \\"]
    lines.append(" ".join(rf"\cmidrule(lr){{{2 + i * n}-{1 + (i + 1) * n}}}" for i in range(len(datasets))))
    lines.append(" & " + " & ".join(tex_metric.get(m, _tex(m)) for _ in datasets for m in metrics) + r" \\")
    lines.append(r"\midrule")
    for name in models:
        cells = [_tex(name)]
        for ds in datasets:
            for m in metrics:
                text = _fmt(results[name].get(ds, {}).get(m), digits)
                cells.append(rf"\textbf{{{text}}}" if name in best.get((ds, m), ()) and len(models) > 1 else text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    cap = " ".join(t for t in (caption, convention) if t)
    if cap:
        lines.append(rf"\caption{{{_tex(cap)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
