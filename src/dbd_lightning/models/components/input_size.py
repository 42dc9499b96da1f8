"""A clear error for input sizes that a top-down decoder with exact x2 upsampling cannot take.

DFFNet's DFFM (and PDNet's and R-DFFNet's decoder) upsample each encoder level by exactly 2 and
combine it with the next finer level (product or concatenation). That needs every level to be
exactly twice the size of the next coarser one, which holds for every encoder when the height
and width are multiples of the encoder's output stride (32). Other sizes fail deep inside the
decoder with a shape mismatch; :func:`check_level_sizes` names the stride and the nearest valid
sizes instead. The check is exact: a size that the encoder's rounding happens to make work
(e.g. 61 with ceil-rounding strides) still runs, as before.

``predict`` / ``eval`` never hit the error: they resize (or tile) to multiples of 32
(``size_multiple``). DDNet, BTBNet and DepthNet resize each level to the next one's size and take
any input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...utils.errors import UserError

__all__ = ["InputSizeError", "check_level_sizes", "nearest_multiples"]


class InputSizeError(UserError, ValueError):
    """An input size the network cannot take; the entry points print it as ``error: ...`` (exit 2)."""


def nearest_multiples(size: int, stride: int) -> list[int]:
    """The multiples of ``stride`` next to ``size`` (below, if positive, and above)."""
    lo = size // stride * stride
    return [s for s in (lo, lo + stride) if s > 0]


def check_level_sizes(net: str, image: torch.Tensor, features: Sequence[torch.Tensor], stride: int) -> None:
    """Raise an :class:`InputSizeError` (a ValueError) naming ``stride`` and the nearest valid sizes unless each of ``features``
    (finest first) is exactly twice the size of the next. Skipped while tracing / exporting / compiling
    (the exported graph takes dynamic sizes; multiples of ``stride`` are safe there)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    h, w = (int(s) for s in image.shape[-2:])
    if h % stride == 0 and w % stride == 0:
        return
    sizes = [tuple(int(s) for s in f.shape[-2:]) for f in features]
    if all(a == (2 * b[0], 2 * b[1]) for a, b in zip(sizes, sizes[1:], strict=False)):
        return

    def near(s: int) -> str:
        return " or ".join(str(v) for v in nearest_multiples(s, stride))

    def closest(s: int) -> int:
        return min(nearest_multiples(s, stride), key=lambda v: (abs(v - s), v))

    raise InputSizeError(
        f"{net}: an input of {h}x{w} does not fit the encoder's output stride {stride} (its levels {sizes} "
        f"do not halve exactly, and the decoder upsamples each by 2). Use a height and width that are "
        f"multiples of {stride}: height {near(h)}, width {near(w)} (e.g. data.image_size=[{closest(h)},"
        f"{closest(w)}]; predict resizes to such sizes itself)."
    )
