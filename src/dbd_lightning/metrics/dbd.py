"""DBD metrics as ``torchmetrics.Metric`` classes: MAE and the thresholded scores (precision, recall,
IoU; the 256-threshold curves, F-beta and max-F are in :mod:`.curves`).

Inputs of every ``update(preds, target)``:

* ``preds``: in-focus probability in ``[0, 1]`` (``sigmoid(logits)``), float;
* ``target``: binary mask, in-focus = 1 (bool, integer or float 0/1);
* either one tensor ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``, or a **list**
  of such tensors with different sizes (each image scored at its own original
  size; the caller resizes predictions back to the GT size).

Common options:

* ``positive``: ``'blur'`` (default; scores ``1 - preds`` against ``1 - target``)
  or ``'focus'``.
* ``threshold``: a float (default 0.5; positive where ``s >= threshold``, compared
  in the map's dtype exactly as torch's ``s >= threshold``), or
  ``'adaptive'``: per image ``min(adaptive_factor * mean(s), adaptive_cap)`` with
  ``s`` the positive-class map (factor 1.5 = BTBNet / DD; pysodmetrics uses 2,
  capped at 1).  ``FBeta`` also takes ``'max'`` (max over 256 quantised thresholds,
  see :mod:`dbd_lightning.metrics.functional`).
* ``strict``: compare with ``>`` instead of ``>=`` (DD's notebook: ``x > 1.5 * mean``).
* ``adaptive_target``: also binarise the (positive-class) GT with the adaptive
  rule, as DD's notebook does (``gt > 1.5 * mean(gt)``).  On a binary GT with
  positive fraction ``f`` this keeps the GT unchanged while ``0 < threshold < 1``;
  with ``>`` a threshold ``>= 1`` (``factor * f >= 1``, uncapped) empties the GT,
  and with ``>=`` an all-zero GT becomes all positive.  It exists only to
  reproduce that notebook.
* ``averaging``: ``'per_image'`` (score each image, average over images) or
  ``'pooled'`` (sum TP/FP/FN over the dataset, score once).
* ``empty_score``: value of P, R, F and IoU for an image (or a pooled dataset)
  whose GT **and** prediction have no positive pixel (default 1; pysodmetrics: 0).
  Any other ``0/0`` is 0 (see :mod:`~dbd_lightning.metrics.functional`).
* ``validate_args``: check ranges, binary targets and shapes (default True).

States are fixed-size tensors reduced with ``dist_reduce_fx='sum'`` (exact
int64 counts, float64 sums), so the metrics work on CPU / CUDA, under DDP and
with ``merge_state``; memory does not grow with the number of images.  (Apple
MPS has no float64: keep the metrics on CPU there.)  Nothing uses
non-deterministic CUDA kernels (``bincount`` without weights, integer
``cumsum``), so ``torch.use_deterministic_algorithms(True)`` is fine.
``compute()`` returns float32 tensors (NaN before any update).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from . import functional as F

_AVERAGINGS = ("per_image", "pooled")


def _check_averaging(averaging: str) -> str:
    if averaging not in _AVERAGINGS:
        raise ValueError(f"averaging must be one of {_AVERAGINGS}, got {averaging!r}")
    return averaging


def _mean(total: Tensor, count: Tensor) -> Tensor:
    """``total / count`` as float32, NaN when ``count == 0``."""
    return (
        (total.double() / count.double()).float()
        if int(count) > 0
        else torch.full_like(total, float("nan"), dtype=torch.float32)
    )


class _DBDMetric(Metric):
    is_differentiable = False
    full_state_update = False

    def __init__(self, validate_args: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.validate_args = validate_args

    def _groups(self, preds, target):
        return F.as_row_groups(preds, target, validate=self.validate_args)

    def _add_sum_state(
        self, name: str, shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float64
    ) -> None:
        self.add_state(name, default=torch.zeros(shape, dtype=dtype), dist_reduce_fx="sum")


# --------------------------------------------------------------------------- #
# MAE
# --------------------------------------------------------------------------- #
class MAE(_DBDMetric):
    """Mean absolute error between the continuous prediction and the binary GT.

    ``per_image`` (default, D-DFFNet / DD / BTBNet): ``mean_i mean_pixels |p - t|``;
    ``pooled``: ``sum_all |p - t| / total pixels``.  Independent of the positive
    class (``|(1-p) - (1-t)| = |p - t|``).  ``compute()``: scalar float32.
    """

    higher_is_better = False
    sum_mae: Tensor
    count: Tensor
    sum_abs: Tensor
    n_pixels: Tensor

    def __init__(self, averaging: str = "per_image", validate_args: bool = True, **kwargs):
        super().__init__(validate_args=validate_args, **kwargs)
        self.averaging = _check_averaging(averaging)
        self._add_sum_state("sum_mae")
        self._add_sum_state("count", dtype=torch.long)
        self._add_sum_state("sum_abs")
        self._add_sum_state("n_pixels", dtype=torch.long)

    def update(self, preds: Tensor | Sequence[Tensor], target: Tensor | Sequence[Tensor]) -> None:
        for p, t in self._groups(preds, target):
            err = F.abs_error_sums(p, t)
            self.sum_mae += (err / p.shape[1]).sum()
            self.count += p.shape[0]
            self.sum_abs += err.sum()
            self.n_pixels += p.numel()

    def compute(self) -> Tensor:
        if self.averaging == "per_image":
            return _mean(self.sum_mae, self.count)
        return _mean(self.sum_abs, self.n_pixels)


# --------------------------------------------------------------------------- #
# single-threshold scores: precision, recall, F-beta, IoU
# --------------------------------------------------------------------------- #
class _ThresholdedMetric(_DBDMetric):
    """Base of the single-threshold scores; subclasses define :meth:`_score`."""

    higher_is_better = True
    score_name = "score"  # per-image sums live in state ``sum_<score_name>_score``
    tp: Tensor
    fp: Tensor
    fn: Tensor
    count: Tensor

    def __init__(
        self,
        positive: str = "blur",
        threshold: float | str = 0.5,
        averaging: str = "per_image",
        adaptive_factor: float = 1.5,
        adaptive_cap: float | None = 1.0,
        strict: bool = False,
        adaptive_target: bool = False,
        empty_score: float = 1.0,
        validate_args: bool = True,
        **kwargs,
    ):
        super().__init__(validate_args=validate_args, **kwargs)
        self.positive = F.check_positive(positive)
        if isinstance(threshold, str):
            if threshold != "adaptive":
                raise ValueError(f"threshold must be a float or 'adaptive', got {threshold!r}")
        elif not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        self.threshold = threshold
        self.averaging = _check_averaging(averaging)
        self.adaptive_factor = float(adaptive_factor)
        self.adaptive_cap = adaptive_cap
        self.strict = strict
        self.adaptive_target = adaptive_target
        self.empty_score = float(empty_score)
        for name in ("tp", "fp", "fn", "count"):
            self._add_sum_state(name, dtype=torch.long)
        # class-specific name: MetricCollection's compute groups never merge e.g. F and IoU
        self._sum_name = f"sum_{self.score_name}_score"
        self._add_sum_state(self._sum_name)

    def _score(self, tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
        raise NotImplementedError

    def _binarize(self, s: Tensor) -> Tensor:
        if self.threshold == "adaptive":
            thr = F.adaptive_threshold(s, self.adaptive_factor, self.adaptive_cap)
        else:
            thr = float(self.threshold)
        return F.binarize(s, thr, self.strict)

    def update(self, preds: Tensor | Sequence[Tensor], target: Tensor | Sequence[Tensor]) -> None:
        for p, t in self._groups(preds, target):
            s, g = F.positive_class(p, t, self.positive)
            if self.adaptive_target:
                g = self._binarize(g.to(s.dtype))
            tp, fp, fn = F.confusion_counts(self._binarize(s), g)
            self.tp += tp.sum()
            self.fp += fp.sum()
            self.fn += fn.sum()
            setattr(self, self._sum_name, getattr(self, self._sum_name) + self._score(tp, fp, fn).sum())
            self.count += tp.shape[0]

    def compute(self) -> Tensor:
        if self.averaging == "per_image":
            return _mean(getattr(self, self._sum_name), self.count)
        if int(self.count) == 0:
            return torch.tensor(float("nan"), device=self.tp.device)
        return self._score(self.tp, self.fp, self.fn).float()


class Precision(_ThresholdedMetric):
    """Precision ``TP / (TP + FP)`` at one threshold; options as in the module docstring."""

    score_name = "precision"

    def _score(self, tp, fp, fn):
        return F.precision_from_counts(tp, fp, fn, self.empty_score)


class Recall(_ThresholdedMetric):
    """Recall ``TP / (TP + FN)`` at one threshold; options as in the module docstring."""

    score_name = "recall"

    def _score(self, tp, fp, fn):
        return F.recall_from_counts(tp, fp, fn, self.empty_score)


class IoU(_ThresholdedMetric):
    """IoU ``TP / (TP + FP + FN)`` of the positive class; empty union -> ``empty_score`` (1).

    Default = D-DFFNet table: threshold 0.5, blur positive, **pooled** over the
    dataset.  ``compute()``: scalar float32.
    """

    score_name = "iou"

    def __init__(
        self, positive: str = "blur", threshold: float | str = 0.5, averaging: str = "pooled", **kwargs
    ):
        super().__init__(positive=positive, threshold=threshold, averaging=averaging, **kwargs)

    def _score(self, tp, fp, fn):
        return F.iou_from_counts(tp, fp, fn, self.empty_score)
