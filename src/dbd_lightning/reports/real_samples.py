"""The model on real photographs, next to the constant predictors and the released model.

Used at the end of ``make demo`` and of ``experiment=dffnet_lite_synth`` (``real_report: true``):
every predictor is scored on the real samples shipped in the package (``data=real_mini``:
5 CUHK + 5 DUT test pairs) with the run's metric convention, under the papers' protocol
(whole image resized to the network input). Writes, in the run folder:

* ``real_samples.md`` / ``real_samples.json``: MAE / F-beta / IoU per predictor and subset,
  and the mean MAE and pooled IoU over the ten images;
* ``real_samples_grid.png``: one row per image: image | GT | this model [| released model]
  (white = in focus).

The constants are the honest floor: ``all blurred`` (focus = 0 everywhere) and
``all in focus`` (focus = 1). A model that does not beat ``all blurred`` has learnt nothing
that transfers to real photographs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import torch

from ..data.real_mini import REAL_MINI_SUBSETS, real_mini_folder
from ..metrics.collection import build_dbd_metrics
from ..utils.atomic import write_bytes, write_json, write_text

log = logging.getLogger(__name__)

__all__ = ["score_on_real_samples", "real_samples_report", "CONSTANTS"]

#: constant predictors: name -> in-focus probability everywhere
CONSTANTS: dict[str, float] = {"all blurred": 0.0, "all in focus": 1.0}


def _load(subset: str) -> list[dict]:
    ds = real_mini_folder(subset)
    return [ds[i] for i in range(len(ds))]


def score_on_real_samples(predict, metrics_cfg: Mapping, subsets=tuple(REAL_MINI_SUBSETS),
                          samples: Mapping[str, list[dict]] | None = None) -> dict:
    """``{subset: {mae, fbeta, iou}, "all": {mae, iou}}`` of ``predict(rgb) -> focus map`` (or a constant).

    ``samples``: the subsets' loaded samples, when the caller has them already.
    """
    samples = samples if samples is not None else {s: _load(s) for s in subsets}
    out: dict[str, dict[str, float]] = {}
    pooled = build_dbd_metrics(**dict(metrics_cfg))
    maes = []
    for subset in subsets:
        metrics = build_dbd_metrics(**dict(metrics_cfg))
        for sample in samples[subset]:
            gt = torch.from_numpy(np.asarray(sample["mask"], np.float32))
            focus = np.full(gt.shape, predict, np.float32) if isinstance(predict, float) else predict(sample["image"])
            pred = torch.from_numpy(np.ascontiguousarray(focus, np.float32))
            metrics.update([pred[None]], [gt[None]])
            pooled.update([pred[None]], [gt[None]])
            maes.append(float((pred - gt).abs().mean()))
        out[subset] = {k: float(v) for k, v in metrics.compute().items() if k in ("mae", "fbeta", "iou")}
    out["all"] = {"mae": float(np.mean(maes)), "iou": float(pooled.compute()["iou"])}
    return out


def _grid(rows: list[list[np.ndarray]], cell: int = 160) -> np.ndarray:
    def tile(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        if a.ndim == 2:
            a = np.repeat((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
        return cv2.resize(a, (cell, cell), interpolation=cv2.INTER_AREA)

    return np.concatenate([np.concatenate([tile(a) for a in row], axis=1) for row in rows], axis=0)


def real_samples_report(predictors: Mapping[str, object], metrics_cfg: Mapping, out_dir: str | Path) -> str:
    """Score ``predictors`` (name -> object with ``predict_image``) and the constants; write the report.

    The first predictor is "this model"; a second one (e.g. the released model) gets its own
    grid column. Returns the markdown table (also printed by the caller).
    """
    out_dir = Path(out_dir)
    samples = {s: _load(s) for s in REAL_MINI_SUBSETS}  # read once
    images = [x["image"] for s in samples.values() for x in s]
    # each predictor runs once per image (keyed by the image array): the maps are scored and drawn
    maps = {name: {id(rgb): p.predict_image(rgb)["focus"] for rgb in images} for name, p in predictors.items()}
    results: dict[str, dict] = {}
    for name in predictors:
        results[name] = score_on_real_samples(lambda rgb, m=maps[name]: m[id(rgb)], metrics_cfg, samples=samples)
    for name, value in CONSTANTS.items():
        results[name] = score_on_real_samples(value, metrics_cfg, samples=samples)
    lines = [
        "| predictor | CUHK sample (5): MAE / F / IoU | DUT sample (5): MAE / F / IoU | all 10: mean MAE / pooled IoU |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        cells = [" / ".join(f"{r[s][k]:.3f}" for k in ("mae", "fbeta", "iou")) for s in REAL_MINI_SUBSETS]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {r['all']['mae']:.3f} / {r['all']['iou']:.3f} |")
    table = "\n".join(lines)
    write_text(out_dir / "real_samples.md",
               "Real photographs shipped in the package (papers' protocol: whole image resized to the input size)."
               "\n\n" + table + "\n")
    write_json(out_dir / "real_samples.json", results, indent=1)
    names = list(predictors)[:2]
    rows = [[x["image"], x["mask"].astype(np.float32)] + [maps[n][id(x["image"])] for n in names]
            for s in samples.values() for x in s]
    grid = _grid(rows)
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    if ok:
        write_bytes(out_dir / "real_samples_grid.png", memoryview(png))
    log.info("real-sample report: %s (grid columns: image | GT | %s)", out_dir / "real_samples.md", " | ".join(names))
    return table
