"""W&B integration: sweep-aware run grouping, summary at the best epoch, metric tables, eval reports.

Offline by default (``WANDB_MODE=offline``); ``make wandb-sync`` uploads the
offline runs later. Nothing here needs the network.
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


class DBDWandbLogger(WandbLogger):
    """``WandbLogger`` that groups sweeps, keeps the summary at the best epoch and logs metric tables.

    * group / name: see :func:`hydra_run_names` (``sweep_group=false`` turns it off);
    * summary: W&B's default summary is the last logged value. Here every
      ``val/*`` key of the summary is set, at the end of fitting and testing, to
      its value at the epoch where ``monitor`` was best (``mode`` min/max, as the
      checkpoint callback), plus ``best/epoch``, ``best/step`` and ``best/<monitor>``,
      so a sweep's runs compare by their best epoch in the W&B UI;
    * tables: ``val/best_table`` (best epoch) and ``test/table`` (one row per
      dataset, MAE / F-beta / IoU ...) as ``wandb.Table``.

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
    """One W&B run (``job_type=eval``, offline unless ``WANDB_MODE`` says otherwise) with the
    comparison table, one metrics table and PR curve per dataset, and the qualitative grid."""
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
        for ds in datasets:
            per = [[m, *(result.results[m][ds].get(k) for k in ("mae", "fbeta", "iou"))] for m in result.results]
            payload[f"eval/{ds}/table"] = wandb.Table(columns=["model", "mae", "fbeta", "iou"], data=per)
            if f"pr_{ds}" in files:
                payload[f"eval/{ds}/pr_curve"] = wandb.Image(str(files[f"pr_{ds}"]))
            if f"grid_{ds}" in files:
                payload[f"eval/{ds}/predictions"] = wandb.Image(str(files[f"grid_{ds}"]),
                                                                caption="input | GT | models")
        if "grid" in files:
            payload["eval/qualitative_grid"] = wandb.Image(str(files["grid"]), caption="input | GT | models")
        run.log(payload)
        for name_, r in result.results.items():
            for ds, vals in r.items():
                for m, v in vals.items():
                    run.summary[f"{name_}/test/{ds}/{m}"] = v
    finally:
        run.finish()
