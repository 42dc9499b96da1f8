"""Photographic synthetic scenes: determinism, disjoint photo splits, labels, blur scale, compositing."""

from __future__ import annotations

import numpy as np
import pytest

from dbd_lightning.data.synthetic.config import PhotoSceneConfig
from dbd_lightning.data.synthetic.dataset import SyntheticDefocusDataset
from dbd_lightning.data.synthetic.labels import SAMPLE_KEYS
from dbd_lightning.data.synthetic.photo_pool import BUNDLED_SPLITS, photo_ids, segmented_photo
from dbd_lightning.data.synthetic.photographic import PhotographicRenderer

SIZE = (96, 96)


def test_deterministic_and_keys():
    r = PhotographicRenderer(PhotoSceneConfig(size=SIZE, photo_split="train"), seed=3)
    a, b, c = r.render(5), r.render(5), r.render(6)
    assert set(a) == set(SAMPLE_KEYS)
    for k in SAMPLE_KEYS:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["image"], c["image"])
    assert a["image"].dtype == np.uint8 and a["image"].shape == (*SIZE, 3)


def test_photo_splits_are_disjoint_and_respected():
    train, val, test = (set(photo_ids(s)) for s in ("train", "val", "test"))
    assert train and val and test
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(photo_ids("all"))
    r = PhotographicRenderer(PhotoSceneConfig(size=SIZE, photo_split="test"), seed=0)
    for i in range(4):
        _, info = r.render_with_info(i)
        assert set(info["sources"]) <= test
    assert {BUNDLED_SPLITS[p] for p in test} == {"test"}


def test_user_photos_are_split_by_name(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    for i in range(30):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    parts = [set(photo_ids(s, source_dir=str(tmp_path), include_bundled=False)) for s in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == 30 and not (parts[0] & parts[1]) and not (parts[0] & parts[2])


@pytest.mark.parametrize("size", [(96, 96), (160, 160)])
def test_mask_is_radius_threshold_and_blur_scales_with_size(size):
    cfg = PhotoSceneConfig(size=size, photo_split="train", all_sharp_prob=0.0)
    r = PhotographicRenderer(cfg, seed=11)
    scale = size[1] / 320
    for i in range(6):
        s, info = r.render_with_info(i)
        np.testing.assert_array_equal(s["mask"], (s["radius"] <= cfg.r0 * scale).astype(np.uint8))
        # the most defocused layer gets a radius from blur_radius_px, in px at this size
        assert info["max_radius_px"] <= cfg.blur_radius_px[1] * scale + 1e-4
        layer_max = max([float(s["radius"].max())] + info["object_radii_px"])
        assert layer_max >= cfg.blur_radius_px[0] * scale * 0.5  # tilted planes are binned (bin centres)


def test_all_sharp_scene_is_the_sharp_composite():
    """With no blur, no noise, no JPEG and an identity tone curve, the image is the layers pasted."""
    cfg = PhotoSceneConfig(size=SIZE, photo_split="train", all_sharp_prob=1.0, noise_prob=0.0, jpeg_prob=0.0,
                           exposure=(1.0, 1.0), tone_gamma=(2.2, 2.2), tone_contrast=(0.0, 0.0), highlight_prob=0.0)
    s = PhotographicRenderer(cfg, seed=1).render(0)
    assert s["mask"].all() and float(s["radius"].max()) == 0.0
    assert s["dof_edge"].sum() == 0


def test_blurred_background_is_smoother_than_in_focus_subject():
    """The physical point of the scenes: in-focus regions carry more high-frequency energy."""
    import cv2

    cfg = PhotoSceneConfig(size=(160, 160), photo_split="train", focus_subject_prob=1.0, focus_background_prob=0.0,
                           all_sharp_prob=0.0, noise_prob=0.0, jpeg_prob=0.0, blur_radius_px=(4.0, 6.0))
    r = PhotographicRenderer(cfg, seed=5)
    ratios = []
    for i in range(6):
        s = r.render(i)
        lap = np.abs(cv2.Laplacian(cv2.cvtColor(s["image"], cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F))
        m = s["mask"] > 0
        assert m.any() and (~m).any()
        ratios.append(float(lap[m].mean()) / float(lap[~m].mean()))
    # a smooth photo (the moon) can make a smooth in-focus subject, as in real photos: most are not
    assert np.median(ratios) > 2.0 and sum(q > 1.0 for q in ratios) >= 4


def test_segments_and_dataset_dispatch():
    seg = segmented_photo("skimage:astronaut")
    assert seg.labels.shape == seg.image.shape[:2] and seg.labels.max() + 1 == len(seg.sharpness) > 10
    ds = SyntheticDefocusDataset(length=3, seed=2000, preset="photographic", size=SIZE, photo_split="val",
                                 overrides={"blur_radius_px": (2.0, 3.0)})  # data.render_overrides
    sample = ds[1]
    assert sample["image"].shape == (*SIZE, 3) and sample["name"] == "synth_2000_000001"
    assert isinstance(ds.config, PhotoSceneConfig) and ds.config.photo_split == "val"
    assert ds.config.blur_radius_px == (2.0, 3.0)
    with pytest.raises(ValueError, match="photo_split"):  # a collage preset has no photo split
        SyntheticDefocusDataset(length=1, preset="random", size=SIZE, photo_split="val")


@pytest.mark.parametrize("bad", [{"photo_split": "holdout"}, {"blur_radius_px": (0.5, 4.0)}, {"subject_depth": (1.0, 9.0)}])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        PhotoSceneConfig(**bad)


def test_prepare_segments_every_photo_of_the_split_once():
    segmented_photo.cache_clear()
    r = PhotographicRenderer(PhotoSceneConfig(size=SIZE, photo_split="test"), seed=0)
    before = r.render(3)
    assert r.prepare() == len(r.photos) == segmented_photo.cache_info().currsize
    hits = segmented_photo.cache_info().hits
    after = r.render(3)  # served from the cache, and the sample is unchanged
    assert segmented_photo.cache_info().currsize == len(r.photos) and segmented_photo.cache_info().hits > hits
    for k in SAMPLE_KEYS:
        np.testing.assert_array_equal(before[k], after[k])
