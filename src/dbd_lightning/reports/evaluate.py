"""Score several models / saved-map folders on several test sets in one pass over the data.

Each test image is read once; every source (a :class:`~dbd_lightning.inference.predictor.Predictor`
or :class:`~dbd_lightning.reports.saved_maps.SavedMaps`) gives its in-focus
probability at the GT's original size, which feeds one
:func:`~dbd_lightning.metrics.build_dbd_metrics` collection and one
:class:`~dbd_lightning.metrics.PrecisionRecallCurve` per (source, dataset): the
same metric code as ``DetectionTask.test_step``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..inference.predictor import check_prediction
from ..metrics import PrecisionRecallCurve, build_dbd_metrics, resolve_convention
from ..ops.cpu_memory import reuse_freed_memory
from .saved_maps import SavedMaps

_COLLECTION_ONLY = ("max_fbeta", "adaptive_fbeta", "validate_args", "precision_recall", "pr_curve")


@dataclass
class EvalResult:
    """``results[model][dataset][metric]``, ``curves[dataset][model] = (precision, recall)``, grid rows."""

    results: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    curves: dict[str, dict[str, tuple[list[float], list[float]]]] = field(default_factory=dict)
    grid_rows: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def flat(self, model: str, stage: str = "test") -> dict[str, float]:
        """``{"test/<dataset>/<metric>": value}`` of one model (the keys training logs)."""
        return {f"{stage}/{ds}/{m}": v for ds, vals in self.results[model].items() for m, v in vals.items()}


def _identity(x):
    return x


def _names(dataset: Dataset) -> list[str] | None:
    pairs = getattr(dataset, "pairs", None)
    if pairs and all(isinstance(p, tuple | list) for p in pairs):
        return [p[0].stem for p in pairs]
    base = getattr(dataset, "base", None)  # cache wrappers
    return _names(base) if base is not None else None


def _thumb(arr: np.ndarray, max_side: int) -> np.ndarray:
    h, w = arr.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return arr
    return cv2.resize(arr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def evaluate_sources(
    sources: Mapping[str, Any],
    datasets: Mapping[str, Dataset],
    metrics: Mapping[str, Any] | None = None,
    pr_curves: bool = True,
    grid_samples: int = 4,
    grid_max_side: int = 320,
    num_workers: int = 0,
    progress: bool = True,
) -> EvalResult:
    """Evaluate every source on every dataset (raw-sample datasets: ``image``, ``mask``, ``name``).

    Args:
        sources: ``{name: Predictor | SavedMaps}``.
        datasets: ``{test set name: dataset}`` (``datamodule.test_sets``).
        metrics: the metric config (``conf/metrics/*.yaml``: preset + overrides + options).
        pr_curves: also accumulate the 256-threshold PR curve (convention's positive
            class and F-beta averaging).
        grid_samples: first ``n`` images of each dataset kept (thumbnails) for the grid.
    """
    metrics = dict(metrics or {})
    convention = resolve_convention(**{k: v for k, v in metrics.items() if k not in _COLLECTION_ONLY})
    out = EvalResult()
    for ds_name, dataset in datasets.items():
        names = _names(dataset)
        for src in sources.values():
            if isinstance(src, SavedMaps) and names is not None:
                src.check(ds_name, names)
        collections = {s: build_dbd_metrics(**metrics) for s in sources}
        curves = {
            s: PrecisionRecallCurve(positive=convention["positive"], averaging=convention["fbeta_averaging"],
                                    beta2=convention["beta2"], empty_score=convention["empty_score"])
            for s in sources
        } if pr_curves else {}
        loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_identity)
        # full-resolution maps allocate ~50 MB of temporaries per image; reusing freed heap
        # memory instead of fresh pages makes the metrics ~2.4x faster on CPU (bench/metrics.py)
        n = 0
        with reuse_freed_memory():
            for sample in tqdm(loader, desc=f"eval {ds_name}", unit="img", disable=not progress, dynamic_ncols=True):
                image = np.asarray(sample["image"])
                mask = np.asarray(sample["mask"])
                name = str(sample.get("name", n))
                gt = torch.from_numpy(np.ascontiguousarray(mask)).float()
                row = {"label": f"{ds_name}/{name}", "image": _thumb(image, grid_max_side),
                       "gt": _thumb(mask.astype(np.float32), grid_max_side)} if n < grid_samples else None
                for src_name, src in sources.items():
                    if isinstance(src, SavedMaps):
                        focus = src.load(ds_name, name, mask.shape)
                    else:
                        focus = check_prediction(src.predict_image(image), mask.shape, source=f"{src_name} on {name}")
                    pred = torch.from_numpy(focus)
                    collections[src_name].update([pred], [gt])
                    if pr_curves:
                        curves[src_name].update([pred], [gt])
                    if row is not None:
                        row[src_name] = _thumb(focus, grid_max_side)
                if row is not None:
                    out.grid_rows.append(row)
                n += 1
        if n == 0:
            raise ValueError(f"test set {ds_name!r} is empty")
        out.counts[ds_name] = n
        for src_name in sources:
            values = collections[src_name].compute()
            out.results.setdefault(src_name, {})[ds_name] = {
                k: float(v) for k, v in values.items() if isinstance(v, torch.Tensor) and v.numel() == 1
            }  # the collection's own PR curve (metrics=btbnet) is not a table cell
            if pr_curves:
                prec, rec, _ = curves[src_name].compute()
                out.curves.setdefault(ds_name, {})[src_name] = (prec.tolist(), rec.tolist())
    return out
