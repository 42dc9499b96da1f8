"""The table metrics of a DBD evaluation as one ``torchmetrics.MetricCollection``.

Presets (``preset=``; the papers' are declared in their folders, see :data:`PRESETS`), each
overridable key by key through ``**convention``:

* ``'ddffnet'`` (default, D-DFFNet Table I): MAE per image; F-beta (beta^2 = 0.3)
  at threshold 0.5, blur positive, per image then averaged; IoU at 0.5, blur
  positive, pooled over the dataset.
* ``'dd'`` (DD's evaluation notebook): in-focus positive, adaptive threshold
  ``x > 1.5 * mean`` (uncapped, strict) applied to the prediction **and** the GT,
  F-beta and IoU pooled over the dataset; MAE per image.
* ``'btbnet'`` (BTBNet Sec. 4.2): adaptive threshold ``1.5 x mean`` of the map
  (uncapped, ``>=``), precision / recall / F-beta (beta^2 = 0.3) per image then
  averaged, blur positive (BTBNet's maps are blur maps: white = blurred); MAE per
  image. With ``precision_recall`` / ``pr_curve`` (conf/metrics/btbnet.yaml) it also
  reports the average precision and recall and the PR curve over 256 thresholds.
* ``'sod'`` (pysodmetrics / classic SOD code): in-focus (white) positive, adaptive
  threshold ``x >= min(2 * mean, 1)``, per image, both-empty images score 0.
"""

from __future__ import annotations

from typing import Any

from torchmetrics import MetricCollection

from ..models.registry import metric_conventions
from . import functional as F
from .curves import FBeta, MaxFBeta, PrecisionRecallCurve
from .dbd import MAE, IoU, Precision, Recall

#: conventions that belong to no paper; each paper declares its own (``models/<paper>/__init__.py``,
#: ``PAPER.metric_conventions``: ``ddffnet``, ``dd``, ``btbnet``), merged into :data:`PRESETS` below
SHARED_PRESETS: dict[str, dict[str, Any]] = {
    "sod": dict(
        positive="focus",
        threshold="adaptive",
        beta2=0.3,
        adaptive_factor=2.0,
        adaptive_cap=1.0,
        strict=False,
        adaptive_target=False,
        empty_score=0.0,
        mae_averaging="per_image",
        fbeta_averaging="per_image",
        iou_averaging="per_image",
    ),
}



def presets() -> dict[str, dict[str, Any]]:
    """Every named convention: the papers' (read from the registry now) and the shared ones."""
    return {**metric_conventions(), **SHARED_PRESETS}


PRESETS: dict[str, dict[str, Any]] = presets()  # as of import; resolve_convention asks presets() each call


def resolve_convention(preset: str = "ddffnet", **convention: Any) -> dict[str, Any]:
    """The preset's settings with ``convention`` overrides applied (unknown keys raise)."""
    known = presets()
    if preset not in known:
        raise ValueError(f"unknown metric preset {preset!r}; choose one of {sorted(known)}")
    cfg = dict(known[preset])
    unknown = set(convention) - set(cfg)
    if unknown:
        raise ValueError(f"unknown metric convention keys {sorted(unknown)}; valid keys: {sorted(cfg)}")
    cfg.update(convention)
    return cfg


class DBDMetricCollection(MetricCollection):
    """A ``MetricCollection`` that checks each update's inputs once, not once per member.

    The members are built with ``validate_args=False``; with ``validate_args=True``
    (default) :meth:`update` and :meth:`forward` run the range / binary-target / shape
    checks of :func:`~dbd_lightning.metrics.functional.as_row_groups` once and then hand
    the inputs to every member (one pass over a map instead of one per metric).
    """

    def __init__(self, metrics, validate_args: bool = True, **kwargs: Any) -> None:
        super().__init__(metrics, **kwargs)
        self.validate_args = validate_args

    def _check(self, args: tuple, kwargs: dict) -> None:
        if self.validate_args:
            preds = kwargs.get("preds", args[0] if args else None)
            target = kwargs.get("target", args[1] if len(args) > 1 else None)
            F.as_row_groups(preds, target, validate=True)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._check(args, kwargs)
        super().update(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._check(args, kwargs)
        return super().forward(*args, **kwargs)


def build_dbd_metrics(
    prefix: str = "",
    preset: str = "ddffnet",
    max_fbeta: bool = False,
    adaptive_fbeta: bool = False,
    validate_args: bool = True,
    precision_recall: bool = False,
    pr_curve: bool = False,
    **convention: Any,
) -> DBDMetricCollection:
    """Build the table metrics, keyed ``'mae'``, ``'fbeta'``, ``'iou'`` (+ options).

    Args:
        prefix: key prefix, e.g. ``'val/cuhk/'`` -> ``'val/cuhk/mae'``.
        preset: ``'ddffnet'`` (default), ``'dd'``, ``'btbnet'`` or ``'sod'`` (see module docstring).
        max_fbeta: add ``'max_fbeta'`` (max over 256 thresholds, ``fbeta_averaging``).
        adaptive_fbeta: add ``'adaptive_fbeta'`` (adaptive threshold with the
            convention's ``adaptive_factor`` / ``adaptive_cap`` / ``strict`` /
            ``adaptive_target``, ``fbeta_averaging``).
        validate_args: check the inputs (range, binary target, shapes), once per update
            for the whole collection (:class:`DBDMetricCollection`).
        precision_recall: add ``'precision'`` and ``'recall'`` at the convention's
            ``threshold`` with ``fbeta_averaging`` (BTBNet's average P / R).
        pr_curve: add ``'pr_curve'`` (:class:`PrecisionRecallCurve`, 256 thresholds,
            ``fbeta_averaging``); its ``compute()`` is a tuple, not a loggable scalar.
        **convention: overrides of the preset: ``positive``, ``threshold`` (float or
            ``'adaptive'``; used by ``fbeta`` and ``iou``), ``beta2``,
            ``adaptive_factor``, ``adaptive_cap``, ``strict``, ``adaptive_target``,
            ``empty_score``, ``mae_averaging``, ``fbeta_averaging``, ``iou_averaging``.

    Every value of ``compute()`` is a scalar tensor, so the collection can go to
    ``LightningModule.log_dict``.  Compute groups are disabled on purpose:
    torchmetrics would merge two metrics whose states happen to be equal after
    the first batch (e.g. F at 0.5 and adaptive F on a binary prediction) and
    then report one metric's value for both.
    """
    c = resolve_convention(preset, **convention)
    collection_validates, validate_args = validate_args, False  # checked once by the collection
    thr_kwargs = dict(
        positive=c["positive"],
        adaptive_factor=c["adaptive_factor"],
        adaptive_cap=c["adaptive_cap"],
        strict=c["strict"],
        adaptive_target=c["adaptive_target"],
        empty_score=c["empty_score"],
        validate_args=validate_args,
    )
    metrics = {
        "mae": MAE(averaging=c["mae_averaging"], validate_args=validate_args),
        "fbeta": FBeta(
            threshold=c["threshold"], averaging=c["fbeta_averaging"], beta2=c["beta2"], **thr_kwargs
        ),
        "iou": IoU(threshold=c["threshold"], averaging=c["iou_averaging"], **thr_kwargs),
    }
    if max_fbeta:
        metrics["max_fbeta"] = MaxFBeta(
            positive=c["positive"],
            averaging=c["fbeta_averaging"],
            beta2=c["beta2"],
            empty_score=c["empty_score"],
            validate_args=validate_args,
        )
    if adaptive_fbeta:
        metrics["adaptive_fbeta"] = FBeta(
            threshold="adaptive", averaging=c["fbeta_averaging"], beta2=c["beta2"], **thr_kwargs
        )
    if precision_recall:
        for key, cls in (("precision", Precision), ("recall", Recall)):
            metrics[key] = cls(threshold=c["threshold"], averaging=c["fbeta_averaging"], **thr_kwargs)
    if pr_curve:
        metrics["pr_curve"] = PrecisionRecallCurve(
            positive=c["positive"],
            averaging=c["fbeta_averaging"],
            beta2=c["beta2"],
            empty_score=c["empty_score"],
            validate_args=validate_args,
        )
    return DBDMetricCollection(metrics, validate_args=collection_validates, prefix=prefix or None,
                               compute_groups=False)
