"""Synthetic thin-lens renderer, textures and dataset (dbd_lightning.data.synthetic)."""

import dataclasses
import pickle

import cv2
import numpy as np
import pytest

from dbd_lightning.bench.renderer import bench_renderer
from dbd_lightning.data.synthetic import (
    PRESETS,
    SAMPLE_KEYS,
    PhotoSceneConfig,
    RenderConfig,
    SceneConfig,
    SyntheticRenderer,
    TextureBank,
    get_preset,
    resolve_config,
)
from dbd_lightning.data.synthetic.labels import focus_boundary
from dbd_lightning.data.synthetic.textures import TEXTURE_KINDS, available_bundled_photos
from dbd_lightning.ops.psf import blur, disk_kernel
from dbd_lightning.ops.thin_lens import coc_radius_px


def _renderer(preset="random", size=(48, 64), seed=0, **kw):
    return SyntheticRenderer(resolve_config(preset, size=size, **kw), seed=seed)


def _boundary_reference(mask):
    """Pixels with a 4-neighbour (inside the image) of the other value."""
    m = mask.astype(bool)
    out = np.zeros_like(m)
    out[:-1] |= m[:-1] != m[1:]
    out[1:] |= m[1:] != m[:-1]
    out[:, :-1] |= m[:, :-1] != m[:, 1:]
    out[:, 1:] |= m[:, 1:] != m[:, :-1]
    return out


# ----------------------------------------------------------------------------- samples
def test_sample_keys_dtypes_shapes():
    r = _renderer(size=(48, 64))
    for i in range(4):
        s = r.render(i)
        assert tuple(s) == SAMPLE_KEYS
        assert s["image"].dtype == np.uint8 and s["image"].shape == (48, 64, 3)
        for k in ("mask", "dof_edge", "edge_type", "layers"):
            assert s[k].dtype == np.uint8 and s[k].shape == (48, 64), k
        for k in ("radius", "depth"):
            assert s[k].dtype == np.float32 and s[k].shape == (48, 64), k
        assert set(np.unique(s["mask"])) <= {0, 1}
        assert set(np.unique(s["dof_edge"])) <= {0, 1}
        assert set(np.unique(s["edge_type"])) <= {0, 1, 2}
        assert s["depth"].min() >= 0.0 and s["depth"].max() <= 1.0
        assert s["radius"].min() >= 0.0 and s["radius"].max() <= r.config.max_radius_frac * 64 + 1e-4
        assert s["layers"].max() <= r.config.n_layers[1]


def test_deterministic_in_seed_and_index():
    a, b = _renderer(seed=3), _renderer(seed=3)
    s1, s2 = a.render(5), b.render(5)
    for k in SAMPLE_KEYS:
        np.testing.assert_array_equal(s1[k], s2[k])
    np.testing.assert_array_equal(a.render(5)["image"], s1["image"])  # repeatable, order-free
    assert not np.array_equal(a.render(6)["image"], s1["image"])
    assert not np.array_equal(_renderer(seed=4).render(5)["image"], s1["image"])


def test_mask_is_radius_threshold_and_dof_edge_is_its_boundary():
    r = _renderer("shallow", size=(64, 64))
    n_edges = 0
    for i in range(6):
        s = r.render(i)
        np.testing.assert_array_equal(s["mask"], (s["radius"] <= r.config.r0).astype(np.uint8))
        np.testing.assert_array_equal(s["dof_edge"].astype(bool), _boundary_reference(s["mask"]))
        n_edges += int(s["dof_edge"].sum())
    assert n_edges > 0
    odd = np.zeros((5, 6), np.uint8)
    odd[1:3, 2:5] = 1
    np.testing.assert_array_equal(focus_boundary(odd).astype(bool), _boundary_reference(odd))


def test_object_radii_follow_the_thin_lens_formula():
    cfg = resolve_config("shallow", size=(64, 80))
    r = SyntheticRenderer(cfg, seed=1)
    checked = 0
    for i in range(6):
        s, info = r.render_with_info(i)
        lo, hi = cfg.depth_range_m
        for label in range(1, s["layers"].max() + 1):
            sel = s["layers"] == label
            if not sel.any():
                continue
            depth_m = lo + float(s["depth"][sel][0]) * (hi - lo)
            expected = coc_radius_px(
                depth_m,
                info["focal_length_mm"] / 1000,
                info["f_number"],
                info["focus_distance_m"],
                cfg.sensor_width_mm / 1000,
                80,
            )
            expected = min(float(expected), cfg.max_radius_frac * 80)
            np.testing.assert_allclose(s["radius"][sel], expected, rtol=1e-4, atol=1e-5)
            checked += 1
    assert checked >= 3


def test_focused_background_plane_only_is_all_in_focus():
    r = _renderer(size=(40, 40), n_layers=(0, 0), tilted_prob=0.0, focus_on_layer_prob=1.0)
    for i in range(3):
        s = r.render(i)
        assert s["mask"].all() and not s["dof_edge"].any() and not (s["edge_type"] == 2).any()
        assert float(s["radius"].max()) == pytest.approx(0.0, abs=1e-6)


def test_fronto_parallel_background_is_blurred_with_its_disk():
    """With no objects, noise or JPEG the image is the disk-blurred texture."""
    cfg = resolve_config(
        "shallow",
        size=(48, 48),
        n_layers=(0, 0),
        tilted_prob=0.0,
        focus_on_layer_prob=0.0,
        noise_prob=0.0,
        jpeg_quality=None,
        homogeneous_prob=0.0,
        direct_blur_max_radius=None,
        focus_distance_m=(0.6, 0.7),
    )
    r = SyntheticRenderer(cfg, seed=2)
    s = r.render(0)
    rad = float(s["radius"][0, 0])
    assert np.allclose(s["radius"], rad) and rad > 0.5
    # reproduce the texture draw with the same generator sequence
    rng = r.rng(0)
    r._camera(rng)
    from dbd_lightning.data.synthetic.scene import make_scene

    scene = make_scene(rng, cfg, r.bank)
    expected = blur(scene.layers[0].texture, disk_kernel(rad))
    diff = np.abs(s["image"].astype(np.float32) - np.clip(expected * 255 + 0.5, 0, 255).astype(np.uint8))
    assert diff.max() <= 1


def test_depth_edges_lie_on_layer_boundaries():
    r = _renderer("shallow", size=(64, 64))
    found = 0
    for i in range(6):
        s = r.render(i)
        lab = s["layers"]
        boundary = np.zeros(lab.shape, bool)
        boundary[:-1] |= lab[:-1] != lab[1:]
        boundary[1:] |= lab[1:] != lab[:-1]
        boundary[:, :-1] |= lab[:, :-1] != lab[:, 1:]
        boundary[:, 1:] |= lab[:, 1:] != lab[:, :-1]
        depth_edge = s["edge_type"] == 2
        assert np.all(boundary[depth_edge])
        found += int(depth_edge.sum())
    assert found > 0


def test_wide_preset_is_almost_all_in_focus():
    r = _renderer("wide", size=(96, 96), seed=0)
    fractions = [r.render(i)["mask"].mean() for i in range(10)]
    assert np.mean(fractions) > 0.95


def test_shallow_preset_gives_mixed_masks():
    r = _renderer("shallow", size=(96, 96), seed=0)
    fractions = np.array([r.render(i)["mask"].mean() for i in range(10)])
    mixed = (fractions > 0.02) & (fractions < 0.98)
    assert mixed.sum() >= 5
    assert 0.1 < fractions.mean() < 0.9


def test_gaussian_psf_option_and_tilted_plane_bins():
    r = _renderer("shallow", size=(48, 48), psf="gaussian", tilted_prob=1.0, n_depth_bins=4)
    s, info = r.render_with_info(0)
    assert info["background"] == "plane" and 1 <= info["depth_bins"] <= 4
    assert s["image"].shape == (48, 48, 3)
    bg = s["layers"] == 0
    assert len(np.unique(s["radius"][bg])) <= 4


# ----------------------------------------------------------------------------- config
def test_presets_and_errors():
    assert set(PRESETS) == {"shallow", "wide", "random", "photographic"}
    assert get_preset("shallow").f_number[1] <= 2.8 and get_preset("wide").f_number[0] >= 11
    with pytest.raises(ValueError, match="photographic, random, shallow, wide"):
        get_preset("deep")
    with pytest.raises(ValueError, match="not a collage scene"):  # collage renderer, photographic preset
        SyntheticRenderer("photographic")
    with pytest.raises(ValueError, match="valid"):
        RenderConfig().replace(bogus=1)
    with pytest.raises(ValueError, match="disk, gaussian"):
        RenderConfig(psf="box")
    with pytest.raises(ValueError):
        RenderConfig(f_number=(4.0, 2.0))
    with pytest.raises(ValueError):
        RenderConfig(size=(4, 4))
    cfg = resolve_config({"preset": "wide", "f_number": [16, 22]}, size=100)
    assert cfg.size == (100, 100) and cfg.f_number == (16.0, 22.0) and cfg.name == "wide"
    assert resolve_config(cfg) is cfg


def test_scene_kinds_share_the_declared_fields_and_keep_their_defaults():
    """The PSF / binning / noise / JPEG / label fields are SceneConfig's (declared once, checked once);
    each scene kind keeps its own defaults of them."""
    shared = {f.name for f in dataclasses.fields(SceneConfig)}
    assert {"psf", "r0", "n_depth_bins", "radius_step", "noise_prob", "jpeg_quality", "canny_low"} <= shared
    for kind in (RenderConfig, PhotoSceneConfig):
        assert [f.name for f in dataclasses.fields(kind)][: len(shared)] == [f.name for f in dataclasses.fields(SceneConfig)]
        with pytest.raises(ValueError, match="jpeg_quality"):  # the shared check, for both kinds
            kind(jpeg_quality=(90, 20))
    collage, photo = RenderConfig(), PhotoSceneConfig()
    assert (collage.r0, collage.n_depth_bins, collage.radius_step, collage.noise_prob, collage.jpeg_prob) == (
        0.5, 16, 0.25, 0.5, 0.3)
    assert (photo.r0, photo.n_depth_bins, photo.radius_step, photo.noise_prob, photo.jpeg_prob) == (
        1.0, 12, 0.5, 0.6, 0.6)
    assert (collage.tilted_prob, collage.tilt_near_ratio, photo.tilted_prob, photo.tilt_near_ratio) == (
        0.5, (0.15, 0.8), 0.4, (0.1, 0.6))
    # r0 is px at the output size for collages, px at 320 px (scaled) for photographic scenes
    assert collage.replace(size=160).r0_px == 0.5 and photo.replace(size=160).r0_px == 0.5
    # one resolver for both kinds: a mapping on the photographic preset gives its config
    cfg = resolve_config({"preset": "photographic", "psf": "gaussian"}, size=64, photo_split="val")
    assert isinstance(cfg, PhotoSceneConfig) and cfg.psf == "gaussian" and cfg.size == (64, 64)


# ----------------------------------------------------------------------------- textures
def test_bundled_photos_load_offline():
    names = available_bundled_photos()
    assert len(names) >= 5 and "astronaut" in names


@pytest.mark.parametrize("kind", TEXTURE_KINDS)
def test_texture_kinds(kind):
    bank = TextureBank()
    tex, source = bank.sample(np.random.default_rng(0), (37, 53), kind=kind)
    assert tex.shape == (37, 53, 3) and tex.dtype == np.float32
    assert tex.min() >= 0.0 and tex.max() <= 1.0
    assert source.startswith("skimage:") if kind == "photo" else source == kind
    if kind == "homogeneous":
        assert float(tex.std(axis=(0, 1)).max()) < 0.05
    else:
        assert float(tex.std()) > 0.02


def test_texture_bank_errors_and_source_dir(tmp_path):
    with pytest.raises(ValueError, match="valid"):
        TextureBank().sample(np.random.default_rng(0), (8, 8), kind="marble")
    with pytest.raises(FileNotFoundError):
        TextureBank(source_dir=tmp_path)
    img = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    bank = TextureBank(source_dir=tmp_path, include_bundled_photos=False)
    tex, source = bank.sample(np.random.default_rng(1), (20, 20), kind="photo")
    assert source.endswith("a.png") and tex.shape == (20, 20, 3)
    r = SyntheticRenderer(
        resolve_config(
            "random",
            size=32,
            source_dir=str(tmp_path),
            photo_weight=1.0,
            noise_weight=0,
            stripes_weight=0,
            checkers_weight=0,
            homogeneous_prob=0,
            include_bundled_photos=False,
        )
    )
    _, info = r.render_with_info(0)
    assert all(s.endswith("a.png") for s in info["sources"])


# ----------------------------------------------------------------------------- dataset
def test_dataset_contract():
    from dbd_lightning.data.synthetic import SyntheticDefocusDataset

    ds = SyntheticDefocusDataset(length=3, seed=7, preset="shallow", size=32)
    assert len(ds) == 3
    s = ds[1]
    assert s["name"] == "synth_7_000001"
    assert set(s) == set(SAMPLE_KEYS) | {"name"}
    assert all(isinstance(s[k], np.ndarray) for k in SAMPLE_KEYS)
    np.testing.assert_array_equal(ds[-1]["image"], ds[2]["image"])
    with pytest.raises(IndexError):
        ds[3]
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[1]["image"], s["image"])
    np.testing.assert_array_equal(
        SyntheticRenderer(resolve_config("shallow", size=32), seed=7).render(1)["mask"], s["mask"]
    )
    with pytest.raises(ValueError, match="valid"):
        SyntheticDefocusDataset(length=2, preset="nope")


def test_bench_renderer_reports_rates():
    out = bench_renderer(n=2, size=48, warmup=1)
    assert out["samples_per_s"] > 0 and out["ms_per_sample"] > 0
