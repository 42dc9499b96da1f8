"""The data check's GT-polarity cue, and a verdict that states its evidence and never advises on little.

Cue (one image, :func:`focus_cue`): in-focus regions carry more high-frequency
energy than defocused ones (a defocus PSF is a low-pass filter), so the mean
absolute Laplacian of the image inside the GT's in-focus region should exceed
the one inside its blurred region. An image votes "consistent" or "inverted"
only when the cue can mean something; it is not judgeable when

* ``region``: one region is (nearly) empty after eroding both by 3 px at the
  working scale (an all-white or all-black GT; object borders carry edges of
  both sides);
* ``flat``: the smoother region has almost no texture at all (mean |Laplacian|
  below :data:`MIN_TEXTURE`): a uniform subject or a clear sky is smooth
  whether or not it is in focus (synthetic shallow depth-of-field scenes put
  uniform subjects in focus: they used to vote "inverted");
* ``close``: the two regions differ by less than a factor :data:`DECISIVE`.

Verdict (one dataset, :class:`PolarityVerdict`): with fewer than
:data:`MIN_JUDGED` judgeable images there is not enough evidence. Otherwise a
direction is taken only when at least :data:`MAJORITY` of the judged images
point that way and a one-sided sign test gives p <= :data:`MAX_P` (the chance
of a split at least this one-sided if each vote were a coin toss); anything
else is "undecided" and advises nothing. Only an "inverted" verdict is a
warning; the others are notes of the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

#: longest side at which the cue is computed (JPEGs are decoded at a reduced DCT scale)
SIDE = 640
#: an image votes only when its in / out Laplacian ratio is beyond this factor either way
DECISIVE = 1.25
#: each region must cover at least this fraction of the (eroded) image
MIN_AREA = 0.03
#: the smoother region's mean |Laplacian| (grey levels, working scale) must reach this; real blurred
#: backgrounds measure ~5-13 (sensor noise alone gives ~7 per grey level of noise), uniform synthetic layers < 1
MIN_TEXTURE = 2.0
#: judgeable images needed before any verdict
MIN_JUDGED = 5
#: share of the judged images that must point one way
MAJORITY = 0.8
#: largest one-sided sign-test p of a verdict
MAX_P = 0.05
#: why an image is not judgeable (see the module docstring), as the report says it
UNJUDGED = {
    "region": "with a GT region too small to compare (e.g. all-white or all-black GTs)",
    "flat": "with a flat, textureless side (smooth whether in focus or not)",
    "close": f"too close to call (sharpness within a factor {DECISIVE:g})",
    "unreadable": "unreadable",
}
_MEANING = {"white_blurred": "white = blurred", "white_in_focus": "white = in focus"}


@dataclass(frozen=True)
class FocusCue:
    """One image's polarity evidence: ``log(mean |Lap| in the GT's in-focus region / in its blurred region)``."""

    log_ratio: float | None
    reason: str | None = None  # key of :data:`UNJUDGED`; None = the image votes

    @property
    def vote(self) -> int:
        """+1: the GT's in-focus side is the sharper (consistent), -1: the smoother (inverted), 0: no vote."""
        if self.reason is not None or self.log_ratio is None:
            return 0
        return 1 if self.log_ratio > 0 else -1


def grey_image(path: str | Path, side: int = SIDE) -> np.ndarray:
    """Grey float32 image, reduced so that its long side is about ``side`` (JPEG: reduced DCT decoding)."""
    with Image.open(path) as img:
        if img.format == "JPEG" and max(img.size) > 2 * side:
            scale = side / max(img.size)
            img.draft("L", (max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale))))
        if img.getexif().get(0x0112, 1) not in (1, None):
            img = ImageOps.exif_transpose(img)
        arr = np.asarray(img.convert("L"), np.float32)
    h, w = arr.shape
    if max(h, w) > 1.5 * side:
        f = side / max(h, w)
        arr = cv2.resize(arr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return arr


def focus_cue(grey: np.ndarray, focus: np.ndarray) -> FocusCue:
    """The cue of a grey image and its in-focus mask (uint8 {0, 1}, resized nearest to the image)."""
    h, w = grey.shape
    if focus.shape != (h, w):
        focus = cv2.resize(focus, (w, h), interpolation=cv2.INTER_NEAREST)
    lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))
    kernel = np.ones((7, 7), np.uint8)
    inside = cv2.erode(focus, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    outside = cv2.erode(1 - focus, kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
    # the Laplacian's own 1-px image border is not image content
    inside[[0, -1], :] = inside[:, [0, -1]] = False
    outside[[0, -1], :] = outside[:, [0, -1]] = False
    if min(inside.mean(), outside.mean()) < MIN_AREA:
        return FocusCue(None, "region")
    e_in, e_out = float(lap[inside].mean()), float(lap[outside].mean())
    ratio = float(np.log((e_in + 1e-3) / (e_out + 1e-3)))
    if min(e_in, e_out) < MIN_TEXTURE:
        return FocusCue(ratio, "flat")
    if abs(ratio) <= math.log(DECISIVE):
        return FocusCue(ratio, "close")
    return FocusCue(ratio)


def sign_test_p(k: int, n: int) -> float:
    """One-sided sign test: P(at least ``k`` of ``n`` fair coin tosses land one way)."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2.0 ** n if n else 1.0


@dataclass(frozen=True)
class PolarityVerdict:
    """The votes of the sampled images of one dataset and what they allow to say."""

    sampled: int
    consistent: int
    inverted: tuple[str, ...]  # names of the GT files that point to an inverted polarity
    unjudged: tuple[tuple[str, int], ...]  # (reason, count), reasons in :data:`UNJUDGED` order

    @classmethod
    def of(cls, cues: Sequence[tuple[str | Path, FocusCue]], sampled: int | None = None) -> PolarityVerdict:
        """Count the votes of ``(GT file, cue)`` pairs (``sampled``: images checked, default ``len(cues)``)."""
        reasons = [c.reason or "close" for _, c in cues if c.vote == 0]
        return cls(sampled=len(cues) if sampled is None else sampled,
                   consistent=sum(c.vote > 0 for _, c in cues),
                   inverted=tuple(Path(p).name for p, c in cues if c.vote < 0),
                   unjudged=tuple((r, reasons.count(r)) for r in UNJUDGED if r in reasons))

    @property
    def judged(self) -> int:
        return self.consistent + len(self.inverted)

    def p_value(self, votes: int) -> float:
        """Sign-test p of ``votes`` of the judged images pointing one way."""
        return sign_test_p(votes, self.judged)

    @property
    def outcome(self) -> str:
        """``not_enough`` | ``inverted`` | ``consistent`` | ``undecided`` (rule: module docstring)."""
        if self.judged < MIN_JUDGED:
            return "not_enough"
        for name, votes in (("inverted", len(self.inverted)), ("consistent", self.consistent)):
            if votes >= MAJORITY * self.judged and self.p_value(votes) <= MAX_P:
                return name
        return "undecided"

    def _unjudged(self) -> str:
        return ", ".join(f"{n} {UNJUDGED[r]}" for r, n in self.unjudged)

    def message(self, polarity: str, where: Path | str | None = None) -> tuple[str, str]:
        """``(issue kind, text)``: ``polarity`` (a warning) for ``inverted``, else ``polarity_evidence`` (a note)."""
        other = "white_blurred" if polarity == "white_in_focus" else "white_in_focus"
        inv, con, outcome = len(self.inverted), self.consistent, self.outcome
        of = f"the {self.judged} judgeable images (of {self.sampled} checked" + (f", in {where})" if where else ")")
        skipped = f"; not judgeable: {self._unjudged()}" if self.unjudged else ""
        named = " (" + ", ".join(self.inverted[:3]) + (", ..." if inv > 3 else "") + ")" if inv else ""
        if outcome == "not_enough":
            return "polarity_evidence", (
                f"not enough evidence to judge polarity ({self.judged} of {self.sampled} images judgeable, a verdict "
                f"needs {MIN_JUDGED}){skipped}. Nothing is advised: compare a few GT files with their images by eye "
                f"(polarity={polarity} reads {_MEANING[polarity]})")
        if outcome == "inverted":
            return "polarity", (
                f"the GT polarity looks inverted: in {inv} of {of} the region the GT marks in focus "
                f"(polarity={polarity}) carries less high-frequency energy than the region it marks blurred, the "
                f"opposite in {con}; sign-test p = {self.p_value(inv):.3g}{skipped}; if the GT files are "
                f"{_MEANING[other]}, set data.polarity={other}")
        if outcome == "consistent":
            return "polarity_evidence", (
                f"polarity={polarity} agrees with the images: in {con} of {of} the region the GT marks in focus "
                f"is the sharper one, the opposite in {inv}{named}; sign-test p = {self.p_value(con):.3g}{skipped}")
        return "polarity_evidence", (
            f"polarity undecided: of {of}, {inv} point to inverted GTs{named} and {con} to polarity={polarity}; "
            f"a verdict needs {MAJORITY:.0%} of them one way and sign-test p <= {MAX_P:g}, so nothing is advised "
            f"(if the GTs mix polarities, look at those named){skipped}")
