"""Figures of an evaluation report (matplotlib, Agg backend): PR curves and the qualitative grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..utils.atomic import write_atomic  # noqa: E402


def save_figure(fig, path: Path) -> None:
    """``fig`` written atomically to ``path`` (format from the suffix), then closed."""
    try:
        write_atomic(path, lambda f: fig.savefig(f, format=path.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)


def iso_f_precision(recall: np.ndarray, f: float, beta2: float = 0.3) -> np.ndarray:
    """Precision on the iso-F line ``F = (1 + b2) P R / (b2 P + R)``: ``P = F R / ((1 + b2) R - b2 F)``.

    NaN where no precision in [0, 1] reaches ``f`` at that recall.
    """
    recall = np.asarray(recall, np.float64)
    den = (1.0 + beta2) * recall - beta2 * f
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(den > 0, f * recall / den, np.nan)
    return np.where((p >= 0) & (p <= 1), p, np.nan)


def plot_pr_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    title: str = "",
    positive: str = "blur",
    beta2: float = 0.3,
    iso_f: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9),
) -> Path:
    """One PNG with every model's precision-recall curve (``{model: (precision, recall)}``) and iso-F lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=120)
    r = np.linspace(1e-3, 1, 400)
    for f in iso_f:
        ax.plot(r, iso_f_precision(r, f, beta2), color="0.82", lw=0.8, zorder=0)
        p_end = iso_f_precision(np.array([1.0]), f, beta2)[0]
        if np.isfinite(p_end):
            ax.text(1.0, p_end, f" F={f:g}", color="0.55", fontsize=6, va="center")
    for name, (precision, recall) in curves.items():
        prec, rec = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
        ok = np.isfinite(prec) & np.isfinite(rec)
        ax.plot(rec[ok], prec[ok], lw=1.6, label=name)
    ax.set(xlim=(0, 1.0), ylim=(0, 1.02), xlabel=f"recall ({positive} positive)",
           ylabel=f"precision ({positive} positive)", title=title)
    ax.grid(alpha=0.25)
    if curves:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)
    return path


def qualitative_grid(
    rows: Sequence[Mapping],
    columns: Sequence[str],
    path: str | Path,
    cell_height: float = 1.6,
) -> Path:
    """Rows of ``{"label": str, "image": HxWx3 uint8, "gt": HxW, <model>: HxW in [0, 1]}``.

    Columns: ``input | GT | each model`` (``columns`` = the model names); maps are
    shown white = in focus. One PNG.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ["input", "GT (white = in focus)", *columns]
    n, m = max(len(rows), 1), len(names)
    aspect = np.mean([r["image"].shape[1] / r["image"].shape[0] for r in rows]) if rows else 1.0
    fig, axes = plt.subplots(n, m, figsize=(m * cell_height * aspect, n * cell_height + 0.4), dpi=110,
                             squeeze=False)
    for i in range(n):
        for j in range(m):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i >= len(rows):
                continue
            row = rows[i]
            key = "image" if j == 0 else "gt" if j == 1 else columns[j - 2]
            value = row.get(key)
            if value is None:
                continue
            if j == 0:
                ax.imshow(value)
            else:
                ax.imshow(np.asarray(value, np.float32), cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
            if i == 0:
                ax.set_title(names[j], fontsize=7)
            if j == 0:
                ax.set_ylabel(row.get("label", ""), fontsize=6)
    fig.tight_layout(pad=0.3)
    save_figure(fig, path)
    return path
