"""The int8 build calibrates in chunks (issue 26: onnxruntime's calibrator held every intermediate
tensor of all 16 calibration scenes at once, 4.0 GB at 320 px): the calibrator is handed at most
``int8.calibration_chunk`` scenes per pass, every scene once."""

from __future__ import annotations

import pytest

from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.inference.quantize import Int8Settings, calibration_stride
from dbd_lightning.runs.resolver import resolve_checkpoint

from .run_fixtures import make_run


@pytest.mark.parametrize("n,chunk,stride", [(16, 4, 4), (6, 4, 3), (7, 4, 1), (2, 4, 2), (16, 100, 16), (5, 1, 1)])
def test_stride_is_the_largest_divisor_not_above_the_chunk(n, chunk, stride):
    assert calibration_stride(n, chunk) == stride


def test_chunk_setting_is_checked():
    assert Int8Settings.from_mapping({}).calibration_chunk == 4
    with pytest.raises(ValueError, match=r"int8.calibration_chunk=0 is out of range"):
        Int8Settings.from_mapping({"calibration_chunk": 0})


@pytest.mark.slow  # builds an int8 graph (calibration and check): minutes on a loaded 2-core machine
def test_the_calibrator_sees_one_chunk_per_pass(tmp_path, monkeypatch):
    """Percentile calibration (histograms), or its min / max fallback for a constant activation: every pass
    holds at most 2 of the 6 scenes, and every scene is calibrated (before the fix: one pass of 6)."""
    from onnxruntime.quantization import calibrate

    passes: list[int] = []
    for cls in (calibrate.HistogramCalibrater, calibrate.MinMaxCalibrater):
        monkeypatch.setattr(cls, "collect_data", _counting(cls.collect_data, passes))
    run = resolve_checkpoint(make_run(tmp_path, seed=13))
    CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime_int8",
                                 int8={"calibration_images": 6, "check_images": 1, "calibration_chunk": 2})
    # the run that made the graph (the last three passes) saw all 6 scenes; no pass ever held more than 2
    # (on this tiny network the percentile pass may stop after its first chunk and fall back to min / max)
    assert passes and max(passes) <= 2 and passes[-3:] == [2, 2, 2], passes


def _counting(real, passes: list[int]):
    def counting(self, reader):
        seen = []
        get_next = reader.get_next

        def spy():
            item = get_next()
            if item:
                seen.append(1)
            return item

        reader.get_next = spy
        try:
            return real(self, reader)
        finally:
            passes.append(len(seen))

    return counting
