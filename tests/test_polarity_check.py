"""The data check's polarity verdict states its evidence and never advises a flip on weak evidence
(``data/polarity.py``): hand-built votes, hand-built images, real CUHK samples, a synthetic shallow set."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from dbd_lightning.data.polarity import FocusCue, PolarityVerdict, focus_cue, sign_test_p

from .run_fixtures import CUHK_SAMPLE
from .test_bad_input_data_predict import run_check


def _votes(consistent: int, inverted: int, **unjudged: int) -> list[tuple[str, FocusCue]]:
    cues = [(f"c{i}.png", FocusCue(1.0)) for i in range(consistent)]
    cues += [(f"i{i}.png", FocusCue(-1.0)) for i in range(inverted)]
    for reason, n in unjudged.items():
        cues += [(f"{reason}{i}.png", FocusCue(None, reason)) for i in range(n)]
    return cues


# ------------------------------------------------------------------ the rule, on hand-built votes
def test_sign_test_p_by_hand():
    assert sign_test_p(5, 5) == 1 / 32
    assert sign_test_p(5, 6) == 7 / 64             # C(6,5) + C(6,6) = 7
    assert sign_test_p(8, 10) == 56 / 1024         # 45 + 10 + 1
    assert sign_test_p(9, 10) == 11 / 1024
    assert sign_test_p(0, 0) == 1.0


@pytest.mark.parametrize("consistent, inverted, outcome", [
    (0, 5, "inverted"),       # 100 %, p = 1/32
    (1, 9, "inverted"),       # 90 %, p = 11/1024
    (0, 4, "not_enough"),     # 4 judged < 5, however one-sided
    (1, 5, "undecided"),      # 83 % but p = 7/64 > 0.05
    (2, 8, "undecided"),      # 80 % but p = 56/1024 = 0.055
    (40, 60, "undecided"),    # p = 0.028 but only 60 %: no clear majority
    (6, 0, "consistent"),
    (7, 1, "consistent"),     # 87.5 %, p = 9/256 = 0.035
])
def test_verdict_needs_enough_images_and_a_clear_majority(consistent, inverted, outcome):
    assert PolarityVerdict.of(_votes(consistent, inverted)).outcome == outcome


def test_inverted_verdict_states_its_evidence_and_the_fix():
    verdict = PolarityVerdict.of(_votes(0, 5, region=2, close=1), sampled=9)
    kind, text = verdict.message("white_in_focus", "/data/set/gt")
    assert kind == "polarity"  # the only outcome that is a warning
    assert "looks inverted: in 5 of the 5 judgeable images (of 9 checked, in /data/set/gt)" in text
    assert "the opposite in 0; sign-test p = 0.0312" in text
    assert "not judgeable: 2 with a GT region too small to compare (e.g. all-white or all-black GTs), " \
           "1 too close to call" in text
    assert text.endswith("if the GT files are white = blurred, set data.polarity=white_blurred")


def test_weak_or_missing_evidence_advises_nothing():
    kind, text = PolarityVerdict.of(_votes(0, 2, region=10)).message("white_in_focus")
    assert kind == "polarity_evidence"
    assert text.startswith("not enough evidence to judge polarity (2 of 12 images judgeable, a verdict needs 5); "
                           "not judgeable: 10 with a GT region too small")
    assert "set data.polarity" not in text
    kind, text = PolarityVerdict.of(_votes(1, 5)).message("white_blurred")
    assert kind == "polarity_evidence" and "set data.polarity" not in text
    assert text.startswith("polarity undecided: of the 6 judgeable images (of 6 checked), 5 point to inverted GTs "
                           "(i0.png, i1.png, i2.png, ...) and 1 to polarity=white_blurred")
    kind, text = PolarityVerdict.of(_votes(6, 0)).message("white_blurred")
    assert kind == "polarity_evidence"
    assert text == ("polarity=white_blurred agrees with the images: in 6 of the 6 judgeable images (of 6 checked) "
                    "the region the GT marks in focus is the sharper one, the opposite in 0; sign-test p = 0.0156")


# ------------------------------------------------------------------ the cue, on hand-built images
def _checkers(h=64, w=64, cell=4):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.where((yy // cell + xx // cell) % 2 == 0, 200.0, 50.0).astype(np.float32)


def _left_half(h=64, w=64):
    focus = np.zeros((h, w), np.uint8)
    focus[:, : w // 2] = 1
    return focus


def test_cue_votes_for_the_sharp_side_either_way():
    grey = _checkers()
    grey[:, 32:] = cv2.GaussianBlur(grey, (0, 0), 2.0)[:, 32:]  # right half defocused, still textured
    assert focus_cue(grey, _left_half()).vote == 1
    assert focus_cue(grey, 1 - _left_half()).vote == -1


def test_a_flat_in_focus_subject_is_not_evidence_of_inversion():
    """A uniform subject in focus before a blurred but textured background (the synthetic shallow scenes):
    the GT is right, the subject is merely smoother. It used to vote "inverted"."""
    grey = cv2.GaussianBlur(_checkers(), (0, 0), 1.5)
    grey[:, :32] = 120.0  # in focus, uniform: |Laplacian| = 0 there
    cue = focus_cue(grey, _left_half())
    assert cue.log_ratio < -5 and cue.reason == "flat" and cue.vote == 0


def test_an_all_white_gt_cannot_be_judged():
    cue = focus_cue(_checkers(), np.ones((64, 64), np.uint8))
    assert cue.log_ratio is None and cue.reason == "region" and cue.vote == 0


# ------------------------------------------------------------------ the data check, end to end
def _cuhk_copy(root: Path, invert: bool = False, all_white: int = 0) -> Path:
    """The 5 real CUHK samples (GT white = in focus); ``invert``: GTs stored white = blurred as CUHK ships
    them; ``all_white``: that many GTs replaced by all-white (whole image in focus) masks."""
    shutil.copytree(CUHK_SAMPLE, root)
    gts = sorted((root / "gt").iterdir())
    for i, gt in enumerate(gts):
        arr = np.asarray(Image.open(gt).convert("L"))
        if i < all_white:
            arr = np.full_like(arr, 255)
        elif invert:
            arr = 255 - arr
        Image.fromarray(arr).save(gt)
    return root


def test_real_cuhk_masks_white_blurred_read_as_such_give_no_inverted_warning(tmp_path, capsys):
    root = _cuhk_copy(tmp_path / "cuhk", invert=True)
    code, text = run_check(capsys, root, "data.polarity=white_blurred")
    assert code == 0 and "looks inverted" not in text and "set data.polarity" not in text
    assert "polarity=white_blurred agrees with the images: in 5 of the 5 judgeable images (of 5 checked" in text
    assert "the opposite in 0; sign-test p = 0.0312" in text
    code, text = run_check(capsys, root)  # the same files read white = in focus: inverted, said with its evidence
    assert code == 0 and "looks inverted: in 5 of the 5 judgeable images (of 5 checked" in text
    assert "set data.polarity=white_blurred" in text


def test_mostly_all_white_masks_say_there_is_not_enough_evidence(tmp_path, capsys):
    root = _cuhk_copy(tmp_path / "cuhk", all_white=4)
    code, text = run_check(capsys, root, "data.polarity=white_blurred")  # the one real GT read the wrong way
    assert code == 0 and "looks inverted" not in text and "set data.polarity" not in text
    assert "notes:" in text and "not enough evidence to judge polarity (1 of 5 images judgeable, a verdict needs " \
                                "5); not judgeable: 4 with a GT region too small to compare" in text
    assert "data layout check: OK, 2 warning(s)" in text  # the notes are no warnings (2 = shared splits)


def test_correct_synthetic_shallow_set_is_not_called_inverted(tmp_path, capsys):
    """``synth preset=shallow seed=3`` (12 correct scenes, 320 px): the old cue counted 4 of 6 decisive
    images "inverted" (uniform subjects in focus) and advised data.polarity=white_blurred."""
    from dbd_lightning.data.synthetic.writer import write_dataset

    root = write_dataset(tmp_path / "shallow", n=12, seed=3, preset="shallow", size=320, progress=False)
    code, text = run_check(capsys, root)  # headers level: a sample of 12 = every pair
    assert code == 0, text
    assert "looks inverted" not in text and "set data.polarity" not in text
    assert "polarity_evidence:" in text and "with a flat, textureless side" in text
