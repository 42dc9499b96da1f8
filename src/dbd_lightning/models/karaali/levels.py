"""Karaali's blur levels (Karaali, Harte & Jung, Sec. IV-A), defined once for the whole suite.

B-NET classifies an edge patch into 23 blur levels: disk (pillbox) PSF radii
0.5, 0.75, ..., 6.0 px in steps of 0.25 px. E-NET's training composites blur the
foreground and the background with radii from {0, 1, 3, 5} px. The training data
(:mod:`.synthetic`, :mod:`.patches`), the inference pipeline (level -> radius) and
the B-NET config (``conf/model/karaali_bnet_net.yaml``, via :func:`bnet_radii`) all read
these numbers from here.
"""

from __future__ import annotations

__all__ = ["BNET_RADII", "BNET_RADIUS_STEP", "ENET_RADII", "bnet_radii"]

#: Spacing of the B-NET levels (px).
BNET_RADIUS_STEP: float = 0.25
#: The 23 B-NET blur levels (disk radius, px): level ``k`` has radius ``0.5 + 0.25 k``.
BNET_RADII: tuple[float, ...] = tuple(0.5 + BNET_RADIUS_STEP * k for k in range(23))
#: E-NET foreground / background radii (px); a composite uses a pair ``r_fg < r_bg``.
ENET_RADII: tuple[float, ...] = (0.0, 1.0, 3.0, 5.0)


def bnet_radii() -> list[float]:
    """:data:`BNET_RADII` as a list (for configs: ``radii: {_target_: ...levels.bnet_radii}``)."""
    return list(BNET_RADII)
