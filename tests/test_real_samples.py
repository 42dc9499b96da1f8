"""The real samples shipped in the package, and the constant-predictor floor computed by hand."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dbd_lightning.data.real_mini import REAL_MINI_SUBSETS, real_mini_folder, real_mini_root
from dbd_lightning.reports.real_samples import real_samples_report, score_on_real_samples

BETA2 = 0.3


def _blur_fractions(subset: str) -> list[float]:
    ds = real_mini_folder(subset)
    return [1.0 - float(np.asarray(ds[i]["mask"], np.float64).mean()) for i in range(len(ds))]


def test_shipped_samples_equal_the_test_fixtures():
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures" / "real_mini"
    for folder in ("cuhk_te_sample", "dut_te_sample"):
        for kind in ("image", "gt"):
            for f in sorted((fixtures / folder / kind).iterdir()):
                shipped = next((real_mini_root() / folder / kind).glob(f.stem + ".*"))
                np.testing.assert_array_equal(cv2.imread(str(shipped), cv2.IMREAD_UNCHANGED),
                                              cv2.imread(str(f), cv2.IMREAD_UNCHANGED))


def test_all_blurred_constant_matches_hand_computation():
    res = score_on_real_samples(0.0, {"preset": "ddffnet"})
    all_blur, all_px, maes = 0.0, 0.0, []
    for subset in REAL_MINI_SUBSETS:
        p = np.array(_blur_fractions(subset))
        # prediction 0 = blurred everywhere: MAE = in-focus fraction; blur-positive precision p, recall 1
        assert res[subset]["mae"] == pytest.approx(float(np.mean(1 - p)), abs=1e-5)
        assert res[subset]["fbeta"] == pytest.approx(float(np.mean((1 + BETA2) * p / (BETA2 * p + 1))), abs=1e-5)
        ds = real_mini_folder(subset)
        blur = sum(float((1 - np.asarray(ds[i]["mask"], np.float64)).sum()) for i in range(len(ds)))
        px = sum(float(np.asarray(ds[i]["mask"]).size) for i in range(len(ds)))
        assert res[subset]["iou"] == pytest.approx(blur / px, abs=1e-5)
        all_blur, all_px = all_blur + blur, all_px + px
        maes += list(1 - p)
    assert res["all"]["iou"] == pytest.approx(all_blur / all_px, abs=1e-5)
    assert res["all"]["mae"] == pytest.approx(float(np.mean(maes)), abs=1e-5)


class _Oracle:
    """Predicts the GT itself (looked up by image content): the report must score it perfectly."""

    def __init__(self):
        self.gts = {}
        for s in REAL_MINI_SUBSETS:
            ds = real_mini_folder(s)
            for i in range(len(ds)):
                self.gts[ds[i]["image"].tobytes()] = np.asarray(ds[i]["mask"], np.float32)

    def predict_image(self, rgb):
        return {"focus": self.gts[rgb.tobytes()]}


def test_report_scores_an_oracle_perfectly_and_writes_the_grid(tmp_path):
    table = real_samples_report({"oracle": _Oracle()}, {"preset": "ddffnet"}, tmp_path)
    res = json.loads((tmp_path / "real_samples.json").read_text())
    assert res["oracle"]["all"] == {"mae": 0.0, "iou": 1.0}
    assert set(res) == {"oracle", "all blurred", "all in focus"} and "| oracle |" in table
    grid = cv2.imread(str(tmp_path / "real_samples_grid.png"))
    assert grid.shape == (10 * 160, 3 * 160, 3)
    # the GT column is the mask, white = in focus
    gt0 = cv2.resize((np.asarray(real_mini_folder("real_cuhk")[0]["mask"]) * 255).astype(np.uint8), (160, 160),
                     interpolation=cv2.INTER_AREA)
    assert np.abs(grid[:160, 160:320, 0].astype(int) - gt0).max() <= 1
