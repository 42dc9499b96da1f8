"""W&B integration: sweep-aware run grouping, summary at the best epoch, metric tables, eval reports.

Offline by default (``WANDB_MODE=offline``); ``make wandb-sync`` uploads the
offline runs later. Nothing here needs the network.

Written for the pinned wandb (``pyproject.toml``): images go to ``wandb.Image`` as uint8
arrays in 0..255 or as PNG files (wandb 0.31 casts other arrays with ``astype(uint8)``
and does not rescale: a [0, 1] float image would be black); tables hold plain floats /
strings / ``None`` (images inside a ``wandb.Table`` are not in the run's media files but in a
run artifact, so images are logged as image lists); PR curves are ``wandb.plot.line`` charts over a ``model | recall |
precision`` table. ``tests/test_wandb_dashboard.py`` reads the logged media files back.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


def hydra_run_names(group: str | None, name: str | None) -> tuple[str | None, str | None]:
    """Group / name of a run: in a Hydra multirun the sweep folder's name joins the group
    (``<task_name>/<sweep stamp>``) and the job's overrides name the run, so each sweep is
    one W&B group whose runs are told apart by their overrides."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return group, name
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return group, name
    sweep = Path(str(hc.sweep.dir)).name
    job = str(hc.job.get("override_dirname") or "") or f"job{hc.job.num}"
    return (f"{group}/{sweep}" if group else sweep), (f"{name}/{job}" if name else job)


def _scalar(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if not math.isnan(f) else None


def metrics_table_rows(metrics: Mapping[str, float], stage: str) -> tuple[list[str], list[list]]:
    """``<stage>/<dataset>/<metric>`` keys as table rows: ``dataset, metric1, metric2, ...``."""
    per: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == stage:
            per.setdefault(parts[1], {})[parts[2]] = value
    order = ("mae", "fbeta", "iou")
    cols = sorted({m for r in per.values() for m in r}, key=lambda m: (order.index(m) if m in order else 9, m))
    return ["dataset", *cols], [[ds, *(r.get(c) for c in cols)] for ds, r in per.items()]


def pr_curve_chart(curves: Mapping[str, tuple], title: str):
    """A W&B line chart of precision over recall, one line per model (``{model: (precision, recall)}``).

    The data is a ``wandb.Table`` with columns ``model | recall | precision`` (non-finite
    points dropped), drawn by ``wandb.plot.line(..., stroke="model")``.
    """
    import wandb

    rows = []
    for name, (precision, recall) in curves.items():
        for p, r in zip(precision, recall, strict=True):
            p, r = _scalar(p), _scalar(r)
            if p is not None and r is not None and math.isfinite(p) and math.isfinite(r):
                rows.append([str(name), r, p])
    table = wandb.Table(columns=["model", "recall", "precision"], data=rows)
    return wandb.plot.line(table, "recall", "precision", stroke="model", title=title)


SAMPLE_GAP = 4  # white pixels between the panels of a sample strip


def sample_strip(row: Mapping, models: list[str]):
    """One qualitative sample as a uint8 (H, W, 3) strip ``input | GT | <model> ...``, pixel exact.

    ``row``: an :class:`~dbd_lightning.reports.evaluate.EvalResult` grid row (``image`` HxWx3
    uint8, ``gt`` and each model HxW in [0, 1], white = in focus). Maps are rounded to grey levels
    (GT 0 / 1 stay exactly 0 / 255); panels are separated by :data:`SAMPLE_GAP` white columns; a
    model without a map for this sample is a mid-grey panel.
    """
    import numpy as np

    image = np.asarray(row["image"])
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"sample {row.get('label')}: the input must be HxWx3 uint8, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]

    def grey(a):
        if a is None:
            return np.full((h, w, 3), 128, np.uint8)
        g = np.round(np.clip(np.asarray(a, np.float64), 0, 1) * 255).astype(np.uint8)
        if g.shape != (h, w):
            raise ValueError(f"sample {row.get('label')}: map {g.shape} differs from the input {(h, w)}")
        return np.repeat(g[..., None], 3, axis=2)

    gap = np.full((h, SAMPLE_GAP, 3), 255, np.uint8)
    panels = [image, grey(row["gt"]), *(grey(row.get(m)) for m in models)]
    return np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)


def convention_of(params: Mapping[str, Any]) -> str | None:
    """The metric-convention sentence of a run config's ``metrics`` node (``None`` without one)."""
    from ..metrics.describe import describe_convention

    metrics = params.get("metrics") if isinstance(params, Mapping) else None
    if not isinstance(metrics, Mapping):
        return None
    return describe_convention(**metrics)


class DBDWandbLogger(WandbLogger):
    """``WandbLogger`` that groups sweeps, keeps the summary at the best epoch and logs metric tables.

    * group / name: see :func:`hydra_run_names` (``sweep_group=false`` turns it off);
    * summary: W&B's default summary is the last logged value. Here every
      ``val/*`` key of the summary is set, at the end of fitting and testing, to
      its value at the epoch where ``monitor`` was best (``mode`` min/max, as the
      checkpoint callback), plus ``best/epoch``, ``best/step`` and ``best/<monitor>``,
      so a sweep's runs compare by their best epoch in the W&B UI;
    * tables: ``val/best_table`` (best epoch) and ``test/table`` (one row per
      dataset, MAE / F-beta / IoU ...) as ``wandb.Table``;
    * ``metric_convention`` in the summary: the sentence of :func:`describe_convention` for
      the run config's ``metrics`` node (set by :meth:`log_hyperparams`);
    * ``test/<dataset>/pr_curve``: PR curves as W&B line charts (:meth:`log_pr_curve`).

    Args:
        monitor: the metric that picks the best epoch (``${data.monitor}``); ``None`` = off.
        mode: ``min`` or ``max``.
        sweep_group: add the sweep folder to the group in Hydra multiruns.
        **kwargs: :class:`lightning.pytorch.loggers.WandbLogger` arguments.
    """

    def __init__(self, *args, monitor: str | None = None, mode: str = "min", sweep_group: bool = True,
                 group: str | None = None, name: str | None = None, **kwargs) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if sweep_group:
            group, name = hydra_run_names(group, name)
        super().__init__(*args, group=group, name=name, **kwargs)
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self.best_metrics: dict[str, float] = {}
        self._latest_val: dict[str, float] = {}
        self._test: dict[str, float] = {}
        self._tables_logged: set[tuple] = set()

    def _better(self, value: float) -> bool:
        return self.best is None or (value < self.best if self.mode == "min" else value > self.best)

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        super().log_hyperparams(params, *args, **kwargs)
        convention = convention_of(params)
        if convention:
            self.experiment.summary["metric_convention"] = convention

    @rank_zero_only
    def log_pr_curve(self, key: str, precision, recall, step: int | None = None, name: str = "model") -> None:
        """One PR curve (``precision``, ``recall`` sequences) as a W&B line chart under ``key``."""
        payload = {key: pr_curve_chart({name: (list(precision), list(recall))}, title=key)}
        if step is not None:
            payload["trainer/global_step"] = step
        self.experiment.log(payload)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        values = {k: _scalar(v) for k, v in metrics.items()}
        self._latest_val.update({k: v for k, v in values.items() if k.startswith("val/") and v is not None})
        self._test.update({k: v for k, v in values.items() if k.startswith("test/") and v is not None})
        current = values.get(self.monitor) if self.monitor else None
        if current is not None and self._better(current):
            self.best = current
            self.best_metrics = dict(self._latest_val)
            self.best_metrics["best/epoch"] = values.get("epoch")
            self.best_metrics["best/step"] = step
            self.best_metrics[f"best/{self.monitor}"] = current

    def _log_table(self, key: str, metrics: Mapping[str, float], stage: str) -> None:
        import wandb

        columns, rows = metrics_table_rows(metrics, stage)
        sig = (key, tuple(map(tuple, rows)))
        if rows and sig not in self._tables_logged:
            self.experiment.log({key: wandb.Table(columns=columns, data=rows)})
            self._tables_logged.add(sig)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None and status == "success":
            if self.best_metrics:
                self.experiment.summary.update({k: v for k, v in self.best_metrics.items() if v is not None})
                self._log_table("val/best_table", {k: v for k, v in self.best_metrics.items()
                                                   if k.startswith("val/")}, "val")
            if self._test:
                self._log_table("test/table", self._test, "test")
        super().finalize(status)


def log_eval_report(cfg, result, files: Mapping[str, Path], convention: str) -> None:
    """One W&B run (``job_type=eval``, offline unless ``WANDB_MODE`` says otherwise).

    Keys: ``eval/table`` (models x datasets), per dataset ``eval/<ds>/table`` (MAE / F / IoU per
    model), ``eval/<ds>/pr_curve`` (W&B line chart, one line per model), ``eval/<ds>/pr_curve_png``
    (the report's figure), ``eval/<ds>/samples`` (one pixel-exact strip input | GT | each model's map per sample) and
    ``eval/<ds>/predictions`` (the report's per-dataset grid, several datasets only);
    ``eval/qualitative_grid``; summary: ``<model>/test/<ds>/<metric>`` and ``metric_convention``."""
    import wandb

    w = cfg.get("wandb_run") or {}
    group, name = hydra_run_names(w.get("group", cfg.task_name), w.get("name", cfg.task_name))
    run = wandb.init(project=w.get("project", "dbd_lightning"), group=group, name=name, job_type="eval",
                     dir=str(cfg.paths.output_dir), config={"sources": list(result.results), "convention": convention},
                     tags=list(w.get("tags", [])) or None)
    try:
        datasets = list(result.counts)
        cols = ["model"] + [f"{ds}/{m}" for ds in datasets for m in ("mae", "fbeta", "iou")]
        rows = [[name_] + [r.get(ds, {}).get(m) for ds in datasets for m in ("mae", "fbeta", "iou")]
                for name_, r in result.results.items()]
        payload: dict[str, Any] = {"eval/table": wandb.Table(columns=cols, data=rows)}
        models = list(result.results)
        for ds in datasets:
            per = [[m, *(result.results[m][ds].get(k) for k in ("mae", "fbeta", "iou"))] for m in result.results]
            payload[f"eval/{ds}/table"] = wandb.Table(columns=["model", "mae", "fbeta", "iou"], data=per)
            if result.curves.get(ds):
                payload[f"eval/{ds}/pr_curve"] = pr_curve_chart(result.curves[ds], title=f"PR curve: {ds}")
            if f"pr_{ds}" in files:  # the report's figure (with iso-F lines), as written
                payload[f"eval/{ds}/pr_curve_png"] = wandb.Image(str(files[f"pr_{ds}"]))
            if f"grid_{ds}" in files:
                payload[f"eval/{ds}/predictions"] = wandb.Image(str(files[f"grid_{ds}"]),
                                                                caption="input | GT | models")
            ds_rows = [r for r in result.grid_rows if str(r.get("label", "")).startswith(f"{ds}/")]
            if ds_rows:  # images in a wandb.Table go to a run artifact, not the media files: a list of strips
                caption = " | ".join(["input", "GT", *models])
                payload[f"eval/{ds}/samples"] = [wandb.Image(sample_strip(r, models), caption=f"{r['label']}: {caption}")
                                                 for r in ds_rows]
        if "grid" in files:
            payload["eval/qualitative_grid"] = wandb.Image(str(files["grid"]), caption="input | GT | models")
        run.log(payload)
        run.summary["metric_convention"] = convention
        for name_, r in result.results.items():
            for ds, vals in r.items():
                for m, v in vals.items():
                    run.summary[f"{name_}/test/{ds}/{m}"] = v
    finally:
        run.finish()
