"""A photo too large for the memory left is refused from its header, before decoding (issue 26: a 48 MP
photo; predict's peak grows with the pixel count). The file is named with its size, the estimate and
the fix; the rest of the batch is predicted; ``strict=true`` makes it exit 2; a bad ``memory.*`` value
names the key."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dbd_lightning.inference import image_memory
from dbd_lightning.predict import predict
from dbd_lightning.utils.errors import ConfigError, UserError

from .helpers import compose_cfg
from .test_predict import FakeBlurPipeline


class CountingPipeline(FakeBlurPipeline):
    def __init__(self):
        super().__init__()
        self.seen = []

    def predict_image(self, rgb):
        self.seen.append(rgb.shape[:2])
        return super().predict_image(rgb)


@pytest.fixture
def photos(tmp_path, monkeypatch):
    src = tmp_path / "photos"
    src.mkdir()
    Image.new("L", (8000, 6000)).save(src / "big48mp.png")  # 48 MP (a few kB: only the header is read)
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(src / "small.png")
    monkeypatch.setattr(image_memory, "available_bytes", lambda: 512 * 2**20)  # 0.5 GiB left
    return src


def _cfg(tmp_path, overrides):
    return compose_cfg(tmp_path / "hydra", overrides, config_name="predict")


def test_48_mp_photo_is_refused_before_decoding(tmp_path, photos):
    src = photos
    pipe = CountingPipeline()
    report = predict(_cfg(tmp_path, [f"input={src}", f"output={tmp_path}/out"]), pipe, "fake")
    assert report["written"] == ["small"] and pipe.seen == [(40, 60)]  # the big one never reached the model
    (failed,) = report["failed"]
    # 8000 x 6000 x 16 bytes = 0.72 GiB > 0.50 GiB
    assert failed["file"].endswith("big48mp.png") and "ImageTooLargeError" in failed["error"]
    for part in ("8000x6000 (48 MP)", "about 0.7 GiB", "only 0.5 GiB", "downscaled copy", "memory.check=false"):
        assert part in failed["error"], part
    with pytest.raises(UserError, match="strict=true"):
        predict(_cfg(tmp_path, [f"input={src}", f"output={tmp_path}/out2", "strict=true"]), CountingPipeline(), "f")


def test_the_check_can_be_lowered_or_switched_off(tmp_path, monkeypatch):
    src = tmp_path / "photos"
    src.mkdir()
    Image.new("RGB", (2000, 1000)).save(src / "two_mp.png")
    monkeypatch.setattr(image_memory, "available_bytes", lambda: 16 * 2**20)  # 2 MP x 16 B = 30.5 MiB > 16 MiB
    with pytest.raises(UserError, match="no image could be predicted"):
        predict(_cfg(tmp_path, [f"input={src}", f"output={tmp_path}/o1", "overlay=false"]), CountingPipeline(), "f")
    for n, extra in enumerate((["memory.bytes_per_pixel=6"], ["memory.check=false"])):  # 11.4 MiB fits; no check
        pipe = CountingPipeline()
        report = predict(_cfg(tmp_path, [f"input={src}", f"output={tmp_path}/o{n + 2}", "overlay=false", *extra]),
                         pipe, "fake")
        assert report["written"] == ["two_mp"] and pipe.seen == [(1000, 2000)]


@pytest.mark.parametrize("value,name", [("memory.check=maybe", "memory.check='maybe'"),
                                        ("memory.bytes_per_pixel=0", "memory.bytes_per_pixel=0"),
                                        ("memory.bytes_per_pixel=abc", "memory.bytes_per_pixel='abc'")])
def test_bad_memory_values_name_the_key(tmp_path, photos, value, name):
    src = photos
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        predict(_cfg(tmp_path, [f"input={src}", f"output={tmp_path}/o", value]), CountingPipeline(), "fake")
