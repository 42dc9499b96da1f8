"""One sentence stating a metric convention, printed under every results table."""

from __future__ import annotations

from typing import Any

from .collection import resolve_convention


def describe_convention(
    preset: str = "ddffnet",
    max_fbeta: bool = False,
    adaptive_fbeta: bool = False,
    validate_args: bool = True,
    precision_recall: bool = False,
    pr_curve: bool = False,
    **convention: Any,
) -> str:
    """Human-readable statement of the convention :func:`build_dbd_metrics` would use."""
    c = resolve_convention(preset, **convention)
    pos = "blur" if c["positive"] == "blur" else "in-focus"
    if c["threshold"] == "adaptive":
        cap = f", capped at {c['adaptive_cap']}" if c["adaptive_cap"] is not None else ""
        thr = f"adaptive ({'>' if c['strict'] else '>='} {c['adaptive_factor']} x mean{cap})"
    else:
        thr = f"{'>' if c['strict'] else '>='} {c['threshold']}"
    avg = {"per_image": "per image, averaged", "pooled": "pooled over the dataset"}
    text = (
        f"Convention ({preset}): MAE {avg[c['mae_averaging']]} at each image's original size; "
        f"F-beta (beta^2 = {c['beta2']}) threshold {thr}, {pos} positive, {avg[c['fbeta_averaging']]}; "
        f"IoU threshold {thr}, {pos} positive, {avg[c['iou_averaging']]}."
    )
    if max_fbeta:
        text += " max-F over 256 thresholds."
    if precision_recall:
        text += f" Precision and recall at the F-beta threshold, {avg[c['fbeta_averaging']]}."
    if pr_curve:
        text += " PR curve over 256 thresholds."
    return text
