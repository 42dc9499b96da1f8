"""The int8 build is bounded (issue 26): its memory need, ``int8.build_fixed_mib`` + ``chunk x h x w x
int8.build_bytes_per_pixel``, is checked before anything is built; above the memory available the float32 graph runs, with one warning that
names the keys, and no int8 file is written."""

from __future__ import annotations

import logging

import pytest

from dbd_lightning.inference import quantize
from dbd_lightning.inference.quantize import (
    Int8BuildMemoryError,
    Int8Settings,
    build_memory_need,
    check_build_memory,
)


def test_need_is_the_chunk_times_pixels_times_the_setting():
    # the default: 1000 MiB + 16 calibration images in chunks of 4 at 320 x 320, 1900 bytes per pixel
    assert build_memory_need((320, 320), Int8Settings()) == 1000 * 2**20 + 4 * 320 * 320 * 1900
    # 6 images with chunk 4: onnxruntime needs a divisor, so 3 images are held at once
    settings = Int8Settings(calibration_images=6, calibration_chunk=4, build_fixed_mib=2.0, build_bytes_per_pixel=1000.0)
    assert build_memory_need((64, 96), settings) == 2 * 2**20 + 3 * 64 * 96 * 1000


def test_check_refuses_above_the_available_memory_and_names_the_keys():
    settings = Int8Settings()
    need = 1000 * 2**20 + 4 * 320 * 320 * 1900
    assert check_build_memory((320, 320), settings, need) == need  # exactly enough
    assert check_build_memory((320, 320), settings, None) == need  # unknown memory: no refusal
    with pytest.raises(Int8BuildMemoryError) as err:
        check_build_memory((320, 320), settings, need - 1)
    text = str(err.value)
    assert "int8.calibration_chunk" in text and "int8.build_bytes_per_pixel=1900" in text
    assert "int8.build_fixed_mib=1000 MiB" in text
    one = 1000 * 2**20 + 320 * 320 * 1900  # the suggested chunk of 1
    assert f"{need / 2**30:.2f} GiB" in text and f"1 needs about {one / 2**30:.2f} GiB" in text
    off = Int8Settings(build_bytes_per_pixel=0.0)
    assert check_build_memory((320, 320), off, 1) == 1000 * 2**20  # build_bytes_per_pixel=0: no refusal


def test_setting_is_checked_and_not_part_of_the_cache_key():
    with pytest.raises(ValueError, match=r"int8.build_bytes_per_pixel=-1.0 is out of range"):
        Int8Settings.from_mapping({"build_bytes_per_pixel": -1})
    assert Int8Settings.from_mapping({"build_bytes_per_pixel": 100}).build_bytes_per_pixel == 100.0
    with pytest.raises(ValueError, match=r"int8.build_fixed_mib=-5.0 is out of range"):
        Int8Settings.from_mapping({"build_fixed_mib": -5})
    assert quantize.CACHE_IRRELEVANT == ("build_fixed_mib", "build_bytes_per_pixel")


def test_backend_runs_float32_when_the_build_would_not_fit(tmp_path, monkeypatch, caplog):
    """A tiny run's network through backend=onnxruntime_int8 with 1 byte available: the float32 session is
    used, the warning names the fix, and no int8 graph or sidecar is written."""
    import numpy as np

    from dbd_lightning.inference import image_memory
    from dbd_lightning.inference.predictor import CheckpointPredictor
    from dbd_lightning.runs.resolver import resolve_checkpoint

    from .run_fixtures import make_run

    monkeypatch.setattr(image_memory, "available_bytes", lambda: 1)
    monkeypatch.setenv("DBD_CACHE_DIR", str(tmp_path / "cache"))
    run = resolve_checkpoint(make_run(tmp_path, seed=13))
    with caplog.at_level(logging.WARNING):
        int8 = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime_int8")
        fp32 = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime")
        x = np.random.default_rng(0).uniform(0, 255, (40, 56, 3)).astype(np.uint8)
        a, b = int8.predict_image(x), fp32.predict_image(x)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    warned = [r.getMessage() for r in caplog.records if "onnxruntime_int8" in r.getMessage()]
    assert len(warned) == 1 and "int8.calibration_chunk" in warned[0] and "using the float32 graph" in warned[0]
    assert not list(tmp_path.rglob("*.int8.*"))
