"""DBD metrics over the 256 quantised thresholds ``k / 255``: the precision-recall curve, F-beta
(at a fixed, adaptive or the best threshold) and max-F.

Inputs and common options as in :mod:`.dbd`; binning and edge cases in :mod:`.functional`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import functional as F
from .dbd import _check_averaging, _DBDMetric, _ThresholdedMetric

__all__ = ["FBeta", "MaxFBeta", "PrecisionRecallCurve"]


# --------------------------------------------------------------------------- #
# 256-threshold curves
# --------------------------------------------------------------------------- #
class _CurveStates:
    """Mixin: TP/FP at the 256 quantised thresholds ``k / 255`` (``bin >= k``).

    Pooled states: ``tp_curve``, ``fp_curve`` (int64, 256) and ``n_pos``.  Per-image
    states: sums over images of the per-image precision, recall and F-beta curves
    (float64, 256) and ``count``.  Both are kept (about 8 KiB) so either averaging
    works.  Needs ``positive``, ``averaging``, ``beta2``, ``empty_score`` attributes.
    """

    tp_curve: Tensor
    fp_curve: Tensor
    n_pos: Tensor
    sum_precision: Tensor
    sum_recall: Tensor
    sum_fbeta: Tensor
    count: Tensor

    def _add_curve_states(self) -> None:
        self._add_sum_state("tp_curve", (F.NUM_BINS,), torch.long)
        self._add_sum_state("fp_curve", (F.NUM_BINS,), torch.long)
        self._add_sum_state("n_pos", dtype=torch.long)
        for name in ("sum_precision", "sum_recall", "sum_fbeta"):
            self._add_sum_state(name, (F.NUM_BINS,))
        self._add_sum_state("count", dtype=torch.long)

    def _update_curves(self, preds, target) -> None:
        for p, t in self._groups(preds, target):
            s, g = F.positive_class(p, t, self.positive)
            tp, fp, n_pos = F.curve_counts(s, g)
            fn = n_pos[:, None] - tp
            prec = F.precision_from_counts(tp, fp, fn, self.empty_score)
            rec = F.recall_from_counts(tp, fp, fn, self.empty_score)
            f = F.fbeta_from_counts(tp, fp, fn, self.beta2, self.empty_score)
            self.tp_curve += tp.sum(0)
            self.fp_curve += fp.sum(0)
            self.n_pos += n_pos.sum()
            self.sum_precision += prec.sum(0)
            self.sum_recall += rec.sum(0)
            self.sum_fbeta += f.sum(0)
            self.count += tp.shape[0]

    def _curves(self) -> tuple[Tensor, Tensor, Tensor]:
        """Precision, recall, F-beta curves (float32, 256) for the chosen averaging."""
        if int(self.count) == 0:
            nan = torch.full((F.NUM_BINS,), float("nan"), device=self.tp_curve.device)
            return nan, nan.clone(), nan.clone()
        if self.averaging == "per_image":
            n = self.count.double()
            return (
                (self.sum_precision / n).float(),
                (self.sum_recall / n).float(),
                (self.sum_fbeta / n).float(),
            )
        tp, fp = self.tp_curve, self.fp_curve
        fn = self.n_pos - tp
        return (
            F.precision_from_counts(tp, fp, fn, self.empty_score).float(),
            F.recall_from_counts(tp, fp, fn, self.empty_score).float(),
            F.fbeta_from_counts(tp, fp, fn, self.beta2, self.empty_score).float(),
        )

    def thresholds(self) -> Tensor:
        """The threshold values ``k / 255`` of the curve entries (float32, 256)."""
        return F.threshold_values(self.tp_curve.device)


class _CurveMetric(_CurveStates, _DBDMetric):
    higher_is_better = True

    def __init__(
        self,
        positive: str = "blur",
        averaging: str = "per_image",
        beta2: float = 0.3,
        empty_score: float = 1.0,
        validate_args: bool = True,
        **kwargs,
    ):
        super().__init__(validate_args=validate_args, **kwargs)
        self.positive = F.check_positive(positive)
        self.averaging = _check_averaging(averaging)
        self.beta2 = float(beta2)
        self.empty_score = float(empty_score)
        self._add_curve_states()

    def update(self, preds: Tensor | Sequence[Tensor], target: Tensor | Sequence[Tensor]) -> None:
        self._update_curves(preds, target)


class PrecisionRecallCurve(_CurveMetric):
    """Precision-recall curve over the 256 quantised thresholds ``k / 255``, ``k = 0..255``.

    ``averaging='per_image'`` (default, BTBNet / SOD style): mean over images of the
    per-image curves; ``'pooled'``: curves from dataset-level TP/FP/FN.

    ``compute()`` returns ``(precision, recall, thresholds)``, three float32 tensors
    of length 256, index ``k`` = threshold ``k / 255`` (ascending; positive where
    ``floor(255 s + 0.5) >= k``).  Precision is 0 where nothing is predicted
    positive (unless the GT is empty too: ``empty_score``).  :meth:`fbeta_curve`
    gives the matching F-beta curve (``beta2``, per-image F averaged for
    ``per_image``).  Not loggable as a scalar: keep it out of ``log_dict``.
    """

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:
        prec, rec, _ = self._curves()
        return prec, rec, self.thresholds()

    def fbeta_curve(self) -> Tensor:
        """F-beta at each of the 256 thresholds (float32)."""
        return self._curves()[2]


class FBeta(_CurveStates, _ThresholdedMetric):
    """F-beta score, ``(1 + beta2) P R / (beta2 P + R)`` with ``beta2`` = beta^2 = 0.3.

    Default = D-DFFNet table: threshold 0.5, **blur positive**, per image then
    averaged.  ``threshold='adaptive'`` gives BTBNet's / DD's adaptive F
    (``adaptive_factor`` x mean, see the module docstring); ``threshold='max'``
    gives the max over the 256 quantised thresholds of the F curve (for
    ``per_image``: the max of the image-averaged F curve, as pysodmetrics' maxF;
    for ``pooled``: the max of the dataset-level F curve).  ``compute()``: scalar
    float32.
    """

    score_name = "fbeta"

    def __init__(
        self,
        positive: str = "blur",
        threshold: float | str = 0.5,
        averaging: str = "per_image",
        beta2: float = 0.3,
        **kwargs,
    ):
        self.beta2 = float(beta2)
        self._is_max = threshold == "max"
        super().__init__(
            positive=positive,
            threshold="adaptive" if self._is_max else threshold,
            averaging=averaging,
            **kwargs,
        )
        if self._is_max:
            self.threshold = "max"
            self._add_curve_states()

    def _score(self, tp, fp, fn):
        return F.fbeta_from_counts(tp, fp, fn, self.beta2, self.empty_score)

    def update(self, preds: Tensor | Sequence[Tensor], target: Tensor | Sequence[Tensor]) -> None:
        if self._is_max:
            self._update_curves(preds, target)
        else:
            super().update(preds, target)

    def compute(self) -> Tensor:
        if self._is_max:
            return self._curves()[2].max()
        return super().compute()

    def fbeta_curve(self) -> Tensor:
        """F-beta at each of the 256 thresholds (only for ``threshold='max'``)."""
        if not self._is_max:
            raise RuntimeError("fbeta_curve() needs threshold='max'")
        return self._curves()[2]

    def best_threshold(self) -> Tensor:
        """Threshold value ``k / 255`` that attains the max F (only for ``threshold='max'``)."""
        return F.threshold_values(self.tp.device)[self.fbeta_curve().argmax()]


class MaxFBeta(FBeta):
    """``FBeta(threshold='max')``: max F-beta over the 256 quantised thresholds."""

    def __init__(self, positive: str = "blur", averaging: str = "per_image", beta2: float = 0.3, **kwargs):
        super().__init__(positive=positive, threshold="max", averaging=averaging, beta2=beta2, **kwargs)
