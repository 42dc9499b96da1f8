"""Karaali full pipeline: edges, dense classification, propagation, threshold, predict CLI, Lytro evaluation."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from dbd_lightning.data.io import read_rgb
from dbd_lightning.models.karaali import BNET_RADII, BNet, ENet, KaraaliPipeline, dbd_threshold
from dbd_lightning.ops.edges import canny_hue
from dbd_lightning.ops.patches import extract_patches, reflect_pad

from .helpers import REPO, run_module

LYTRO = REPO / "tests" / "fixtures" / "real_mini" / "lytro_sample"


def _crop(n: int = 72) -> np.ndarray:
    return np.ascontiguousarray(read_rgb(LYTRO / "image_01.png")[100:100 + n, 150:150 + n])


def _pipe(**kw) -> KaraaliPipeline:
    torch.manual_seed(0)
    return KaraaliPipeline(random_init=True, device="cpu", **kw)


def test_canny_hue_follows_skimage_semantics():
    from skimage.color import rgb2hsv
    from skimage.feature import canny

    rgb = _crop()
    ref = canny(rgb2hsv(rgb / 255.0)[..., 0], sigma=np.sqrt(2), low_threshold=0.05, high_threshold=0.06)
    np.testing.assert_array_equal(canny_hue(rgb), ref)
    assert canny_hue(rgb).any()
    with pytest.raises(ValueError, match="HxWx3"):
        canny_hue(rgb[..., 0])


def test_predict_image_maps():
    rgb = _crop()
    out = _pipe().predict_image(rgb)
    assert set(out) == {"focus", "blur_radius", "edges"}
    for v in out.values():
        assert v.shape == rgb.shape[:2] and v.dtype == np.float32 and np.isfinite(v).all()
    assert set(np.unique(out["focus"])) <= {0.0, 1.0}
    assert set(np.unique(out["edges"])) <= {0.0, 1.0, 2.0}
    # Eq. 1 is a normalised (convex) average of the sparse radii
    r = out["blur_radius"]
    assert BNET_RADII[0] - 1e-4 <= r.min() and r.max() <= BNET_RADII[-1] + 1e-4
    with pytest.raises(ValueError, match="uint8"):
        _pipe().predict_image(rgb.astype(np.float32))


def test_pipeline_classification_equals_patchwise_networks():
    rgb = _crop(48)
    pipe = _pipe(patchwise_max=0)  # the dense maps (288 edge pixels)
    edges = canny_hue(rgb)
    (ys, xs), radius, depth = pipe.classify_edges(rgb, edges)
    pick = np.random.default_rng(0).choice(len(ys), 24, replace=False)  # patch-wise check on a subset
    ys, xs, radius, depth = ys[pick], xs[pick], radius[pick], depth[pick]
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        patches = extract_patches(reflect_pad(img), torch.from_numpy(ys), torch.from_numpy(xs))
        bnet = BNet()
        bnet.load_state_dict(pipe.bnet.state_dict())
        enet = ENet()
        enet.load_state_dict(pipe.enet.state_dict())
        logits_b, logits_e = bnet(patches), enet(patches)
    expect_r = np.asarray(BNET_RADII, np.float32)[logits_b.argmax(1).numpy()]
    # argmax ties aside, every edge gets the patch-wise class
    np.testing.assert_array_equal(radius, expect_r)
    np.testing.assert_array_equal(depth, (logits_e.argmax(1) == 1).numpy())


def _double(pipe: KaraaliPipeline) -> KaraaliPipeline:
    pipe.bnet.double()
    pipe.enet.double()
    pipe.dtype = torch.float64
    return pipe


def _mixed_nets() -> tuple[BNet, ENet]:
    """Random B-NET / E-NET with shared f1 whose E-NET calls some edges of the test crops depth edges."""
    torch.manual_seed(3)
    bnet, enet = BNet(), ENet()
    enet.load_f1_from(bnet)
    with torch.no_grad():  # random weights: mostly one class without this
        enet.trunk.fcs[-1].bias.copy_(torch.tensor([0.0, 0.0]))
    return bnet, enet


def _pipe64(bnet: BNet, enet: ENet, **kw) -> KaraaliPipeline:
    """A float64 pipeline on copies of the nets."""
    return _double(KaraaliPipeline(bnet=copy.deepcopy(bnet), enet=copy.deepcopy(enet), device="cpu", **kw))


def test_fast_evaluation_gives_the_same_maps():
    """Receptive-field-aware layers, Winograd trunk conv, B-NET at pattern edges only, and the
    patch-wise path for few edges: the same estimate as the plain dense evaluation (float64,
    where argmax ties cannot differ)."""
    rgb = _crop(48)
    bnet, enet = _mixed_nets()
    fast = _pipe64(bnet, enet, sparse_max=1.0, winograd=True, patchwise_max=0)
    plain = _pipe64(bnet, enet, sparse_max=0.0, winograd=False, reuse_memory=False, patchwise_max=0)
    patches = _pipe64(bnet, enet, patchwise_max=10**6, chunk=200)
    assert fast.shared_f1 and plain.shared_f1
    b = plain.estimate(rgb)
    for a in (fast.estimate(rgb), patches.estimate(rgb)):
        for k in ("sparse", "pattern_edges", "depth_edges"):
            np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_allclose(a["blur_radius"], b["blur_radius"], rtol=1e-6, atol=1e-6)
    # classify_edges: B-NET only at pattern edges leaves NaN at depth edges, the rest as before
    edges = fast.edges(rgb)
    (ys, xs), r_all, d_all = fast.classify_edges(rgb, edges)
    _, r_pat, d_pat = fast.classify_edges(rgb, edges, depth_radius=False)
    np.testing.assert_array_equal(d_all, d_pat)
    assert 0 < d_pat.mean() < 1
    assert np.isnan(r_pat[d_pat]).all() and not np.isnan(r_all).any()
    np.testing.assert_array_equal(r_pat[~d_pat], r_all[~d_pat])
    _, r_all_p, d_all_p = patches.classify_edges(rgb, edges)
    np.testing.assert_array_equal(d_all_p, d_all)
    np.testing.assert_array_equal(r_all_p, r_all)


def test_native_stride_mode_dense_and_patchwise_agree_and_differs_from_exact():
    """``wide_stride=3``: the dense maps (gathered or not) and the patch-wise path give the same
    estimate (float64); it is an approximation, so it differs from the exact pipeline somewhere."""
    rgb = _crop(48)
    bnet, enet = _mixed_nets()
    runs = [_pipe64(bnet, enet, wide_stride=3, patchwise_max=0, sparse_max=sm) for sm in (0.0, 1.0)]
    runs.append(_pipe64(bnet, enet, wide_stride=3, patchwise_max=10**6, chunk=100))
    outs = [r.estimate(rgb) for r in runs]
    for a in outs[1:]:
        for k in ("sparse", "pattern_edges", "depth_edges"):
            np.testing.assert_array_equal(a[k], outs[0][k])
        np.testing.assert_allclose(a["blur_radius"], outs[0]["blur_radius"], rtol=1e-6, atol=1e-6)
    exact = _pipe64(bnet, enet).estimate(rgb)
    assert not np.array_equal(exact["depth_edges"], outs[0]["depth_edges"])
    assert "wide_stride=3" in runs[0].description
    with pytest.raises(ValueError, match="wide_stride"):
        _pipe(wide_stride=2)


def test_per_cell_mode_is_the_exact_networks_at_the_cell_centres():
    """``per_cell``: each edge pixel gets the exact networks' result at its cell's centre (the nearest
    point ``1 + 3u``), dense maps or patch-wise (float64)."""
    from dbd_lightning.models.karaali.engine import snap_to_wide_grid, wide_grid_shape

    rgb = _crop(48)
    bnet, enet = _mixed_nets()
    edges = canny_hue(rgb)
    ys, xs = (torch.from_numpy(a) for a in np.nonzero(edges))
    uy, ux = snap_to_wide_grid(ys, xs, wide_grid_shape(*edges.shape))
    cy, cx = (1 + 3 * uy).numpy(), (1 + 3 * ux).numpy()
    assert np.abs(cy - ys.numpy()).max() <= 1 and np.abs(cx - xs.numpy()).max() <= 1
    centres = np.zeros_like(edges)
    centres[cy, cx] = True
    assert centres.sum() < 0.7 * edges.sum()  # fewer evaluations than edge pixels
    exact = _pipe64(bnet, enet, patchwise_max=0)
    (ey, ex), er, ed = exact.classify_edges(rgb, centres)
    at = {(y, x): i for i, (y, x) in enumerate(zip(ey, ex, strict=True))}
    want = np.array([at[(y, x)] for y, x in zip(cy, cx, strict=True)])
    for pw in (0, 10**6):
        cells = _pipe64(bnet, enet, wide_stride=3, per_cell=True, patchwise_max=pw, chunk=64)
        (gy, gx), r, d = cells.classify_edges(rgb, edges)
        np.testing.assert_array_equal(gy, ys.numpy())
        np.testing.assert_array_equal(d, ed[want])
        np.testing.assert_array_equal(r, er[want])
        assert 0 < d.mean() < 1
    with pytest.raises(ValueError, match="per_cell"):
        _pipe(per_cell=True)


def test_propagation_psi_blocks_depth_edges_and_psi0_mixes():
    h, w = 40, 60
    rgb = np.full((h, w, 3), 128, np.uint8)
    sparse = np.zeros((h, w), np.float32)
    pattern = np.zeros((h, w), np.float32)
    sparse[:, 10], pattern[:, 10] = 1.0, 1
    sparse[:, 50], pattern[:, 50] = 5.0, 1
    depth = np.zeros((h, w), np.float32)
    depth[:, 30] = 1
    blocked = _pipe(psi=1e4).propagate(rgb, sparse, pattern, depth)
    assert np.allclose(blocked[:, :30], 1.0, atol=1e-3) and np.allclose(blocked[:, 31:], 5.0, atol=1e-3)
    mixed = _pipe(psi=0.0).propagate(rgb, sparse, pattern, depth)
    assert 1.5 < mixed[20, 29] < 4.5
    one = _pipe().propagate(rgb, sparse * (sparse == 1), pattern * (sparse == 1), depth)
    assert np.allclose(one, 1.0, atol=1e-5)  # a single level everywhere stays that level


def test_dbd_threshold_eq5():
    blur = np.array([[0.5, 1.0], [3.0, 6.0]], np.float32)
    mask, tau = dbd_threshold(blur, 0.3)
    assert tau == pytest.approx(0.3 * 6.0 + 0.7 * 0.5)
    np.testing.assert_array_equal(mask, [[1, 1], [0, 0]])


def test_missing_weights_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="bnet_ckpt"):
        KaraaliPipeline(device="cpu")
    with pytest.raises(FileNotFoundError, match="convert karaali"):
        KaraaliPipeline(bnet_ckpt=str(tmp_path / "none.ckpt"), device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_and_gpu_give_the_same_maps():
    rgb = _crop(96)
    torch.manual_seed(0)
    bnet, enet = BNet(), ENet()
    cpu = KaraaliPipeline(bnet=bnet, enet=enet, device="cpu").estimate(rgb)
    gpu = KaraaliPipeline(bnet=bnet, enet=enet, device="cuda").estimate(rgb)
    assert (cpu["depth_edges"] == gpu["depth_edges"]).mean() > 0.999
    assert np.abs(cpu["blur_radius"] - gpu["blur_radius"]).mean() < 1e-3


def _save_random(path: Path, net: torch.nn.Module) -> str:
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return str(path)


def _predict_args(tmp_path: Path) -> list[str]:
    from PIL import Image

    torch.manual_seed(0)
    bnet = _save_random(tmp_path / "bnet.ckpt", BNet())
    enet = _save_random(tmp_path / "enet.ckpt", ENet())
    Image.fromarray(_crop(64)).save(tmp_path / "img.png")
    return ["model=karaali", f"model.bnet_ckpt={bnet}", f"model.enet_ckpt={enet}", "model.device=cpu",
            f"input={tmp_path / 'img.png'}", f"output={tmp_path / 'out'}", "save_npy=true"]


def _check_predict_output(out: Path) -> None:
    from PIL import Image

    radius = np.load(out / "blur_radius" / "img.npy")
    assert radius.shape == (64, 64) and 0.5 - 1e-4 <= radius.min() <= radius.max() <= 6.0 + 1e-4
    focus = np.array(Image.open(out / "focus" / "img.png"))
    assert focus.shape == (64, 64) and set(np.unique(focus)) <= {0, 255}


def test_predict_model_karaali_in_process(tmp_path):
    from dbd_lightning.predict import predict

    from .helpers import compose_cfg

    cfg = compose_cfg(tmp_path / "hydra", _predict_args(tmp_path), config_name="predict")
    report = predict(cfg)
    assert report["written"] == ["img"] and not report["failed"]
    _check_predict_output(tmp_path / "out")


@pytest.mark.slow
def test_predict_cli_model_karaali(tmp_path):
    res = run_module("dbd_lightning.predict", _predict_args(tmp_path), tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    _check_predict_output(tmp_path / "out")


def _small_trees(tmp_path: Path) -> tuple[Path, Path]:
    """64x64 crops of the real Lytro and CUHK samples in their layouts (fast evaluation)."""
    from PIL import Image
    from scipy.io import loadmat, savemat

    lytro = tmp_path / "lytro"
    lytro.mkdir()
    for n in ("01", "22"):
        Image.fromarray(read_rgb(LYTRO / f"image_{n}.png")[100:164, 150:214]).save(lytro / f"image_{n}.png")
        savemat(lytro / f"map_{n}.mat", {"blurMap": loadmat(LYTRO / f"map_{n}.mat")["blurMap"][100:164, 150:214]})
    cuhk_src = REPO / "tests" / "fixtures" / "real_mini" / "cuhk_te_sample"
    dbd = tmp_path / "dbd"
    for sub in ("image", "gt"):
        (dbd / sub).mkdir(parents=True)
        for p in sorted((cuhk_src / sub).iterdir())[:1]:
            Image.open(p).crop((100, 100, 164, 164)).save(dbd / sub / p.name)
    return lytro, dbd


def test_evaluate_lytro_and_dbd(tmp_path):
    from scipy.io import loadmat

    from dbd_lightning.models.karaali.evaluate import main

    lytro, dbd = _small_trees(tmp_path)
    torch.manual_seed(0)
    bnet = _save_random(tmp_path / "bnet.ckpt", BNet())
    enet = _save_random(tmp_path / "enet.ckpt", ENet())
    out = tmp_path / "res.json"
    assert main(["--bnet", bnet, "--enet", enet, "--lytro", str(lytro), "--dbd", str(dbd), "--psi", "100", "0",
                 "--device", "cpu", "--out", str(out)]) == 0
    import json

    res = json.loads(out.read_text())
    assert set(res["runs"]) == {"psi=100", "psi=0"}
    run = res["runs"]["psi=100"]
    lyt = run["lytro"]
    assert lyt["n"] == 2 and [p["name"] for p in lyt["per_image"]] == ["image_01", "image_22"]
    # hand check of image 01: MAE of the pipeline's map against the GT map
    pipe = KaraaliPipeline(bnet_ckpt=bnet, enet_ckpt=enet, device="cpu")
    pred = pipe.estimate(read_rgb(lytro / "image_01.png"))["blur_radius"]
    gt = loadmat(lytro / "map_01.mat")["blurMap"]
    assert lyt["per_image"][0]["mae"] == pytest.approx(float(np.abs(pred - gt).mean()), rel=1e-5)
    assert lyt["per_image"][0]["relative_mae"] == pytest.approx(lyt["per_image"][0]["mae"] / 6.0)
    vals = [p["mae"] for p in lyt["per_image"]]
    assert lyt["mae"]["mean"] == pytest.approx(np.mean(vals)) and lyt["mae"]["std"] == pytest.approx(np.std(vals))
    d = run["dbd"]
    assert d["n"] == 1 and 0 <= d["at_alpha"]["accuracy"] <= 1 and 0 <= d["at_alpha"]["fbeta"] <= 1
    assert d["at_best_alpha"]["accuracy"] >= d["at_alpha"]["accuracy"] - 1e-12
    # the native-stride approximation next to the exact run, with its agreement measured on the Lytro images
    out2 = tmp_path / "res2.json"
    assert main(["--bnet", bnet, "--enet", enet, "--lytro", str(lytro), "--variant", "exact", "wide3", "cell3",
                 "--synthetic", "2", "--synthetic-size", "64", "--device", "cpu", "--out", str(out2)]) == 0
    res2 = json.loads(out2.read_text())
    assert set(res2["runs"]) == {"psi=100", "psi=100,wide3", "psi=100,cell3"}
    assert res2["runs"]["psi=100"]["lytro"] == lyt
    assert set(res2["runs"]["psi=100,cell3"]["agreement_vs_exact"]) == {"lytro", "synthetic"}
    # synthetic scenes: GT = the rendered radius map, capped at B-NET's 6 px
    from dbd_lightning.models.karaali.evaluate import synthetic_scenes

    scenes = synthetic_scenes(2, 64)
    assert [n for n, _, _ in scenes] == ["synthetic_000", "synthetic_001"]
    assert all(r.shape == (64, 64) and 0 <= r.min() and r.max() <= 6.0 + 1e-6 for _, _, r in scenes)
    syn = res2["runs"]["psi=100"]["synthetic"]
    got = pipe.estimate(scenes[1][1])["blur_radius"]
    assert syn["per_image"][1]["mae"] == pytest.approx(float(np.abs(got - scenes[1][2]).mean()), rel=1e-5)
    agr = res2["runs"]["psi=100,wide3"]["agreement_vs_exact"]["lytro"]
    approx = KaraaliPipeline(bnet_ckpt=bnet, enet_ckpt=enet, device="cpu", wide_stride=3)
    pred3 = approx.estimate(read_rgb(lytro / "image_01.png"))["blur_radius"]
    assert agr["per_image"][0]["dense_mae_px"] == pytest.approx(float(np.abs(pred3 - pred).mean()), rel=1e-5)
    assert agr["n"] == 2 and all(0 <= agr[k]["mean"] <= 1 for k in ("edge_kind", "level"))


def test_precomputed_edge_maps_are_used(tmp_path):
    from PIL import Image
    from scipy.io import loadmat

    from dbd_lightning.models.karaali.evaluate import lytro_errors

    lytro, _ = _small_trees(tmp_path)
    edges = tmp_path / "edges"
    edges.mkdir()
    for n in ("01", "22"):
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(edges / f"image_{n}.png")
    res = lytro_errors(_pipe(), lytro, edges)
    # no edge -> no estimate -> the map is 0 everywhere, so the MAE is the GT's mean radius
    for p, n in zip(res["per_image"], ("01", "22"), strict=True):
        assert p["mae"] == pytest.approx(float(loadmat(lytro / f"map_{n}.mat")["blurMap"].mean()), rel=1e-5)
    with pytest.raises(FileNotFoundError, match="edge map"):
        lytro_errors(_pipe(), lytro, tmp_path)
