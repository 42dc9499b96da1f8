"""DBD metrics (torchmetrics): MAE, F-beta, IoU, PR curve and max-F.

Prediction = in-focus probability in [0, 1]; target = binary mask, in-focus = 1.
See :mod:`.dbd` for the options and :mod:`.functional` for exact definitions,
binning and edge cases.
"""

from .collection import PRESETS, DBDMetricCollection, build_dbd_metrics, resolve_convention
from .curves import FBeta, MaxFBeta, PrecisionRecallCurve
from .dbd import MAE, IoU, Precision, Recall

__all__ = [
    "MAE",
    "FBeta",
    "IoU",
    "MaxFBeta",
    "PRESETS",
    "Precision",
    "PrecisionRecallCurve",
    "Recall",
    "DBDMetricCollection",
    "build_dbd_metrics",
    "resolve_convention",
]
