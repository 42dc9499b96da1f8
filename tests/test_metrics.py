"""DBD metrics: hand-computed cases, options, state algebra, input checks, and a
comparison against the independent reference implementation pysodmetrics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from dbd_lightning.bench.metrics import baseline_numpy, bench_metrics
from dbd_lightning.metrics import (
    MAE,
    FBeta,
    IoU,
    MaxFBeta,
    Precision,
    PrecisionRecallCurve,
    Recall,
    build_dbd_metrics,
)
from dbd_lightning.metrics import functional as F

# --------------------------------------------------------------------------- #
# hand-computed fixtures
# --------------------------------------------------------------------------- #
# Image A (2x3), in-focus probability and GT (in focus = 1):
#   p = .9 .2 .6        t = 1 0 1
#       .1 .4 .8            0 1 1
# |p - t| = .1 .2 .4 / .1 .6 .2 -> sum 1.6, MAE 1.6 / 6
# Blur positive: blur map 1-p = .1 .8 .4 / .9 .6 .2, blur GT = 0 1 0 / 1 0 0
#   at 0.5: blur pred = 0 1 0 / 1 1 0 -> TP 2 (.8, .9), FP 1 (.6), FN 0
#   P = 2/3, R = 1, F = 1.3 * 2/3 / (0.3 * 2/3 + 1) = 13/18, IoU = 2/3
# Focus positive at 0.5: pred = 1 0 1 / 0 0 1 vs t -> TP 3, FP 0, FN 1
#   P = 1, R = 3/4, F = 1.3 * .75 / (.3 + .75) = 13/14, IoU = 3/4
PA = torch.tensor([[0.9, 0.2, 0.6], [0.1, 0.4, 0.8]])
TA = torch.tensor([[1, 0, 1], [0, 1, 1]])

# Image B (2x3): prediction all in focus, one blurred GT pixel.
#   p = .9 everywhere, t = 1 1 1 / 1 1 0
#   blur at 0.5: nothing predicted -> TP 0, FP 0, FN 1 -> P = R = F = IoU = 0
#   |p - t| = .1 x 5 + .9 = 1.4 -> MAE 1.4 / 6
PB = torch.full((2, 3), 0.9)
TB = torch.tensor([[1, 1, 1], [1, 1, 0]])


def _f(p, r, beta2=0.3):
    return (1 + beta2) * p * r / (beta2 * p + r) if (p + r) > 0 else 0.0


def _value(metric, preds, target):
    metric.update(preds, target)
    return float(metric.compute())


def test_mae_hand_computed():
    assert _value(MAE(), PA, TA) == pytest.approx(1.6 / 6, abs=1e-6)
    # batch (B, 1, H, W) of A and B: per-image mean (1.6/6 + 1.4/6) / 2 = 0.25
    assert _value(MAE(), torch.stack([PA, PB])[:, None], torch.stack([TA, TB])[:, None]) == pytest.approx(
        0.25
    )


def test_fbeta_iou_precision_recall_hand_computed_blur_positive():
    assert _value(FBeta(), PA, TA) == pytest.approx(13 / 18, abs=1e-6)
    assert _value(IoU(), PA, TA) == pytest.approx(2 / 3, abs=1e-6)
    assert _value(Precision(), PA, TA) == pytest.approx(2 / 3, abs=1e-6)
    assert _value(Recall(), PA, TA) == pytest.approx(1.0, abs=1e-6)


def test_polarity_switch_focus_positive():
    assert _value(FBeta(positive="focus"), PA, TA) == pytest.approx(13 / 14, abs=1e-6)
    assert _value(IoU(positive="focus"), PA, TA) == pytest.approx(3 / 4, abs=1e-6)
    # MAE does not depend on polarity; the blur result differs from the focus one
    assert _value(FBeta(positive="blur"), PA, TA) != pytest.approx(13 / 14, abs=1e-3)
    # swapping both maps and the polarity gives the same numbers
    assert _value(FBeta(positive="blur"), 1 - PA, 1 - TA) == pytest.approx(13 / 14, abs=1e-6)


def test_pooled_vs_per_image_differ_on_constructed_pair():
    preds, target = torch.stack([PA, PB]), torch.stack([TA, TB])
    # per image: F = (13/18 + 0) / 2 = 13/36; IoU = (2/3 + 0) / 2 = 1/3
    # pooled:    TP 2, FP 1, FN 1 -> P = R = 2/3 -> F = 2/3; IoU = 2 / 4
    assert _value(FBeta(averaging="per_image"), preds, target) == pytest.approx(13 / 36, abs=1e-6)
    assert _value(FBeta(averaging="pooled"), preds, target) == pytest.approx(2 / 3, abs=1e-6)
    assert _value(IoU(averaging="per_image"), preds, target) == pytest.approx(1 / 3, abs=1e-6)
    assert _value(IoU(averaging="pooled"), preds, target) == pytest.approx(1 / 2, abs=1e-6)
    # MAE differs only for images of different sizes: A (6 px, sum 1.6) and
    # C (1x2, p = .5 .5, t = 1 1, sum 1.0): per image (1.6/6 + .5)/2, pooled 2.6/8
    pc, tc = torch.tensor([[0.5, 0.5]]), torch.tensor([[1, 1]])
    assert _value(MAE(), [PA, pc], [TA, tc]) == pytest.approx((1.6 / 6 + 0.5) / 2, abs=1e-6)
    assert _value(MAE(averaging="pooled"), [PA, pc], [TA, tc]) == pytest.approx(2.6 / 8, abs=1e-6)


def test_adaptive_threshold():
    # blur map of A: .1 .8 .4 / .9 .6 .2, mean .5 -> threshold 1.5 * .5 = .75
    # -> blur pred 0 1 0 / 1 0 0 == blur GT -> F = IoU = 1
    assert _value(FBeta(threshold="adaptive"), PA, TA) == pytest.approx(1.0)
    assert _value(IoU(threshold="adaptive"), PA, TA) == pytest.approx(1.0)
    # factor 2 (pysodmetrics): threshold min(2 * .5, 1) = 1 -> nothing predicted:
    # TP 0, FP 0, FN 2 -> F = 0
    assert _value(FBeta(threshold="adaptive", adaptive_factor=2.0), PA, TA) == 0.0
    # focus map .9 .2 .6 / .1 .4 .8, mean .5 -> .75 -> pred 1 0 0 / 0 0 1
    # vs t 1 0 1 / 0 1 1: TP 2, FP 0, FN 2 -> P 1, R .5 -> F = .65 / .8
    assert _value(FBeta(positive="focus", threshold="adaptive"), PA, TA) == pytest.approx(0.8125, abs=1e-6)
    # the threshold is per image: the batch [A, A] gives the same per-image value
    v = _value(FBeta(positive="focus", threshold="adaptive"), torch.stack([PA, PA]), torch.stack([TA, TA]))
    assert v == pytest.approx(0.8125, abs=1e-6)


def test_strict_comparison_and_dd_target_rule():
    # focus map .5 .5 / 0 0, t = 1 0 / 0 0 at 0.5: >= -> TP 1, FP 1 (P .5, R 1);
    # > -> nothing predicted (P = R = 0)
    p, t = torch.tensor([[0.5, 0.5], [0.0, 0.0]]), torch.tensor([[1, 0], [0, 0]])
    assert _value(Precision(positive="focus"), p, t) == pytest.approx(0.5)
    assert _value(Precision(positive="focus", strict=True), p, t) == 0.0
    # DD's notebook also thresholds the GT at 1.5 x its mean (strict, uncapped):
    # GT with 3/4 in focus -> 1.5 * .75 = 1.125 -> no GT positive at all;
    # prediction .9 .9 / .9 .1 (mean .7 -> 1.05) -> nothing predicted -> both empty
    p, t = torch.tensor([[0.9, 0.9], [0.9, 0.1]]), torch.tensor([[1, 1], [1, 0]])
    dd = dict(positive="focus", threshold="adaptive", adaptive_cap=None, strict=True)
    assert _value(FBeta(**dd, adaptive_target=True), p, t) == 1.0  # both empty -> empty_score
    assert _value(FBeta(**dd, adaptive_target=False), p, t) == 0.0  # FN 3, nothing predicted


def test_threshold_compared_in_map_dtype():
    # float32(0.7) = 0.69999999 < 0.7: compared in float32 (as torch's p >= 0.7 does)
    # the pixel counts; float64 maps compare in float64
    t = torch.tensor([[1, 1]])
    p32 = torch.tensor([[0.7, 0.3]], dtype=torch.float32)
    assert _value(Recall(positive="focus", threshold=0.7), p32, t) == 0.5
    assert _value(Recall(positive="focus", threshold=0.7), p32.double(), t) == 0.0


# --------------------------------------------------------------------------- #
# 256-threshold curves and max-F
# --------------------------------------------------------------------------- #
# Focus positive, p = 1.0 .8 .6 .2 (bins 255, 204, 153, 51), t = 1 0 1 0:
#   k <= 51:       all 4 positive      TP 2 FP 2 -> P .5,  R 1  -> F 1.3*.5/1.15
#   52 <= k <= 153: bins 255,204,153   TP 2 FP 1 -> P 2/3, R 1  -> F 13/18
#   154..204:       bins 255,204       TP 1 FP 1 -> P .5,  R .5 -> F .5
#   205..255:       bin 255            TP 1 FP 0 -> P 1,   R .5 -> F .8125 (max)
PQ = torch.tensor([[1.0, 0.8, 0.6, 0.2]])
TQ = torch.tensor([[1, 0, 1, 0]])


def test_pr_curve_hand_computed():
    m = PrecisionRecallCurve(positive="focus")
    m.update(PQ, TQ)
    prec, rec, thr = m.compute()
    assert prec.shape == rec.shape == thr.shape == (256,)
    assert torch.allclose(thr, torch.arange(256) / 255)
    for ks, p, r in [
        ((0, 51), 0.5, 1.0),
        ((52, 153), 2 / 3, 1.0),
        ((154, 204), 0.5, 0.5),
        ((205, 255), 1.0, 0.5),
    ]:
        for k in ks:
            assert float(prec[k]) == pytest.approx(p, abs=1e-6), k
            assert float(rec[k]) == pytest.approx(r, abs=1e-6), k
            assert float(m.fbeta_curve()[k]) == pytest.approx(_f(p, r), abs=1e-6), k


def test_max_fbeta_hand_computed():
    m = MaxFBeta(positive="focus")
    assert _value(m, PQ, TQ) == pytest.approx(0.8125, abs=1e-6)
    assert float(m.best_threshold()) == pytest.approx(205 / 255)
    assert _value(FBeta(positive="focus", threshold="max"), PQ, TQ) == pytest.approx(0.8125, abs=1e-6)


def test_max_fbeta_per_image_vs_pooled():
    # image 1 = PQ/TQ (per-image F curve above); image 2: p = .4 .4, t = 1 0 (bin 102):
    #   k <= 102: TP 1 FP 1 -> F 1.3*.5/1.15 = .5652; k > 102: nothing -> F 0
    # per image: mean curve max is at k in 52..102: (13/18 + .5652) / 2
    # pooled: k in 52..102: TP 3 FP 2 FN 0 -> P .6, R 1 -> F .78/1.18 = .6610;
    #         k in 205..255: TP 1 FP 0 FN 2 -> P 1, R 1/3 -> F .4333/.6333 = .6842 (max)
    p2, t2 = torch.tensor([[0.4, 0.4]]), torch.tensor([[1, 0]])
    per = _value(MaxFBeta(positive="focus"), [PQ, p2], [TQ, t2])
    pooled = _value(MaxFBeta(positive="focus", averaging="pooled"), [PQ, p2], [TQ, t2])
    assert per == pytest.approx((13 / 18 + _f(0.5, 1.0)) / 2, abs=1e-6)
    assert pooled == pytest.approx(_f(1.0, 1 / 3), abs=1e-6)


def test_curve_matches_single_threshold_path():
    # index k of the curve == single-threshold metric at (k - 0.5) / 255 on 8-bit maps
    g = torch.Generator().manual_seed(1)
    p = torch.randint(0, 256, (3, 17, 23), generator=g).float() / 255
    t = torch.rand(3, 17, 23, generator=g) > 0.4
    for averaging in ("per_image", "pooled"):
        curve = PrecisionRecallCurve(averaging=averaging)
        curve.update(p, t)
        prec, rec, _ = curve.compute()
        fcurve = curve.fbeta_curve()
        for k in (1, 40, 128, 200, 255):
            thr = (k - 0.5) / 255
            kw = dict(threshold=thr, averaging=averaging)
            assert _value(Precision(**kw), p, t) == pytest.approx(float(prec[k]), abs=1e-6)
            assert _value(Recall(**kw), p, t) == pytest.approx(float(rec[k]), abs=1e-6)
            assert _value(FBeta(**kw), p, t) == pytest.approx(float(fcurve[k]), abs=1e-6)


# --------------------------------------------------------------------------- #
# edge cases
# --------------------------------------------------------------------------- #
def test_empty_positive_class_conventions():
    ones, zeros = torch.ones(2, 3), torch.zeros(2, 3)
    # all in focus, predicted all in focus: blur class empty in GT and prediction
    for metric in (
        FBeta(),
        IoU(),
        Precision(),
        Recall(),
        IoU(averaging="per_image"),
        FBeta(averaging="pooled"),
    ):
        assert _value(metric, ones, ones) == 1.0
    assert _value(FBeta(empty_score=0.0), ones, ones) == 0.0
    assert _value(IoU(empty_score=0.0), ones, ones) == 0.0
    # GT empty (no blur), prediction says blur everywhere: TP 0, FP 6 -> all 0
    for metric in (FBeta(), IoU(), Precision(), Recall()):
        assert _value(metric, zeros, ones) == 0.0
    # GT all blur, nothing predicted blurred: TP 0, FN 6 -> P = 0 (0/0 -> 0), all 0
    for metric in (FBeta(), IoU(), Precision(), Recall()):
        assert _value(metric, ones, zeros) == 0.0
    # curves: precision at thresholds where nothing is predicted is 0
    m = PrecisionRecallCurve(positive="focus")
    m.update(torch.tensor([[0.0, 0.2]]), torch.tensor([[1, 0]]))
    prec, rec, _ = m.compute()
    assert float(prec[255]) == 0.0 and float(rec[255]) == 0.0
    assert float(prec[0]) == 0.5 and float(rec[0]) == 1.0


def test_compute_before_update_is_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for metric in (MAE(), FBeta(), IoU(), MaxFBeta()):
            assert math.isnan(float(metric.compute()))
        prec, rec, thr = PrecisionRecallCurve().compute()
        assert torch.isnan(prec).all() and thr.shape == (256,)


# --------------------------------------------------------------------------- #
# input layouts
# --------------------------------------------------------------------------- #
ALL_METRICS = [
    lambda: MAE(),
    lambda: MAE(averaging="pooled"),
    lambda: FBeta(),
    lambda: FBeta(averaging="pooled", positive="focus"),
    lambda: FBeta(threshold="adaptive"),
    lambda: IoU(),
    lambda: IoU(averaging="per_image"),
    lambda: MaxFBeta(),
    lambda: MaxFBeta(averaging="pooled"),
    lambda: PrecisionRecallCurve(),
    lambda: PrecisionRecallCurve(averaging="pooled"),
]


def _result(metric):
    out = metric.compute()
    return torch.cat([o.reshape(-1) for o in out]) if isinstance(out, tuple) else out.reshape(-1)


def _random_images(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    preds = [torch.rand(h, w, generator=g) for h, w in sizes]
    target = [torch.rand(h, w, generator=g) > 0.5 for h, w in sizes]
    return preds, target


@pytest.mark.parametrize("make", ALL_METRICS)
def test_batch_layouts_agree(make):
    preds, target = _random_images([(9, 13)] * 4)
    stacked_p, stacked_t = torch.stack(preds), torch.stack(target)
    results = []
    for p, t in [
        (stacked_p, stacked_t),  # (B, H, W), bool target
        (stacked_p[:, None], stacked_t[:, None].float()),  # (B, 1, H, W), float target
        (preds, [x.long() for x in target]),  # list of (H, W), int target
    ]:
        m = make()
        m.update(p, t)
        results.append(_result(m))
    for r in results[1:]:
        assert torch.allclose(r, results[0], atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("make", ALL_METRICS)
def test_list_of_different_sizes_equals_one_image_at_a_time(make):
    preds, target = _random_images([(9, 13), (20, 7), (5, 5)])
    a, b = make(), make()
    a.update(preds, target)
    for p, t in zip(preds, target, strict=True):
        b.update(p[None, None], t[None, None])
    assert torch.allclose(_result(a), _result(b), atol=1e-6)


def test_list_per_image_average_by_hand():
    preds, target = _random_images([(9, 13), (20, 7), (5, 5)])
    per = []
    for p, t in zip(preds, target, strict=True):
        per.append(_value(FBeta(), p, t))
    assert _value(FBeta(), preds, target) == pytest.approx(sum(per) / 3, abs=1e-6)


# --------------------------------------------------------------------------- #
# state algebra: fixed size, summable (merge_state / simulated DDP sum)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("make", ALL_METRICS)
def test_states_fixed_size_and_summable(make):
    preds, target = _random_images([(9, 13), (20, 7), (5, 5), (11, 11), (8, 3)], seed=3)
    full = make()
    full.update(preds, target)

    first, second = make(), make()
    first.update(preds[:2], target[:2])
    second.update(preds[2:], target[2:])

    # fixed-size tensor states reduced by sum; shapes do not grow with N
    shapes = {k: tuple(v.shape) for k, v in first.metric_state.items()}
    assert shapes == {k: tuple(v.shape) for k, v in full.metric_state.items()}
    assert all(isinstance(v, torch.Tensor) for v in full.metric_state.values())
    assert all(fx is not None and fx.__name__ == "dim_zero_sum" for fx in full._reductions.values())

    # simulated DDP all-reduce: elementwise sum of the two ranks' states
    ddp = make()
    for k in ddp.metric_state:
        setattr(ddp, k, getattr(first, k) + getattr(second, k))
    ddp._update_count = 1
    assert torch.allclose(_result(ddp), _result(full), atol=1e-6)

    first.merge_state(second)
    assert torch.allclose(_result(first), _result(full), atol=1e-6)


def test_forward_returns_batch_value_and_accumulates():
    m = FBeta(averaging="pooled")
    v_a = m(PA, TA)
    v_b = m(PB, TB)
    assert float(v_a) == pytest.approx(13 / 18, abs=1e-6) and float(v_b) == 0.0
    assert float(m.compute()) == pytest.approx(2 / 3, abs=1e-6)


# --------------------------------------------------------------------------- #
# bad inputs
# --------------------------------------------------------------------------- #
def test_logits_rejected_with_range_and_hint():
    with pytest.raises(ValueError, match=r"\[-2\.5, 3\].*sigmoid"):
        FBeta().update(torch.tensor([[-2.5, 3.0]]), torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match="NaN"):
        MAE().update(torch.tensor([[float("nan"), 0.5]]), torch.tensor([[1, 0]]))
    with pytest.raises(TypeError, match="float"):
        MAE().update(torch.tensor([[255, 0]], dtype=torch.uint8), torch.tensor([[1, 0]]))


def test_non_binary_target_rejected_listing_values():
    with pytest.raises(ValueError, match=r"non-binary values \[0\.5, 255\].*half"):
        IoU().update(torch.rand(2, 3), torch.tensor([[0, 1, 0.5], [255, 1, 0]]))


def test_shape_mismatch_shows_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 1, 4, 5\).*\(2, 1, 4, 6\)"):
        MAE().update(torch.rand(2, 1, 4, 5), torch.zeros(2, 1, 4, 6))
    with pytest.raises(ValueError, match=r"image 1: .*\(3, 3\).*\(3, 4\)"):
        MAE().update([torch.rand(2, 2), torch.rand(3, 3)], [torch.zeros(2, 2), torch.zeros(3, 4)])
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        MAE().update([torch.rand(2, 2), torch.rand(3, 3)], [torch.zeros(2, 2)])
    with pytest.raises(ValueError, match="shape"):
        MAE().update(torch.rand(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))


def test_bad_options_rejected():
    with pytest.raises(ValueError, match="positive"):
        FBeta(positive="sharp")
    with pytest.raises(ValueError, match="averaging"):
        IoU(averaging="macro")
    with pytest.raises(ValueError, match="threshold"):
        IoU(threshold="max")
    with pytest.raises(ValueError, match="unknown metric convention"):
        build_dbd_metrics(thresh=0.4)


# --------------------------------------------------------------------------- #
# collection
# --------------------------------------------------------------------------- #
def test_default_collection_keys_and_values():
    coll = build_dbd_metrics("val/cuhk/", max_fbeta=True, adaptive_fbeta=True)
    preds, target = torch.stack([PA, PB]), torch.stack([TA, TB])
    coll.update(preds, target)
    out = coll.compute()
    assert set(out) == {f"val/cuhk/{k}" for k in ("mae", "fbeta", "iou", "max_fbeta", "adaptive_fbeta")}
    assert all(v.ndim == 0 for v in out.values())
    assert float(out["val/cuhk/mae"]) == pytest.approx(0.25, abs=1e-6)
    assert float(out["val/cuhk/fbeta"]) == pytest.approx(13 / 36, abs=1e-6)  # per image
    assert float(out["val/cuhk/iou"]) == pytest.approx(1 / 2, abs=1e-6)  # pooled


def test_dd_preset_is_expressible():
    coll = build_dbd_metrics(preset="dd")
    f = coll["fbeta"]
    assert (f.positive, f.threshold, f.averaging, f.adaptive_factor, f.adaptive_cap, f.strict, f.adaptive_target) == (
        "focus", "adaptive", "pooled", 1.5, None, True, True,
    )  # fmt: skip
    # overrides on top of a preset
    assert build_dbd_metrics(preset="dd", fbeta_averaging="per_image")["fbeta"].averaging == "per_image"


# --------------------------------------------------------------------------- #
# independent reference: pysodmetrics (positive = in focus = white foreground)
# --------------------------------------------------------------------------- #
pysod = pytest.importorskip("py_sod_metrics")


def _sod_data(seed=0, sizes=((24, 31), (17, 40), (30, 30), (12, 9), (20, 20))):
    rng = np.random.default_rng(seed)
    out = []
    for h, w in sizes:
        gt = rng.random((h, w)) > rng.uniform(0.2, 0.8)
        # correlated 8-bit prediction
        pred = np.clip(rng.normal(0.35 + 0.3 * gt, 0.25), 0, 1)
        out.append(((pred * 255).round().astype(np.uint8), gt))
    return out


def _pysod(data, sample_based):
    kw = dict(with_dynamic=True, with_adaptive=True, with_binary=True, sample_based=sample_based)
    ev = pysod.FmeasureV2(
        metric_handlers={
            "f": pysod.FmeasureHandler(**kw, beta=0.3),  # pysodmetrics' beta is beta^2
            "iou": pysod.IOUHandler(**kw),
            "p": pysod.PrecisionHandler(**kw),
            "r": pysod.RecallHandler(**kw),
        }
    )
    mae = pysod.MAE()
    for pred8, gt in data:
        pred = pred8.astype(np.float64) / 255
        ev.step(pred, gt, normalize=False)
        mae.step(pred, gt, normalize=False)
    res = ev.get_results()
    res["mae"] = mae.get_results()["mae"]
    return res


def _ours(data, averaging, dtype=torch.float64):
    preds = [torch.from_numpy(p8).to(dtype) / 255 for p8, _ in data]
    target = [torch.from_numpy(g) for _, g in data]
    sod = dict(positive="focus", averaging=averaging, empty_score=0.0)
    adaptive = dict(threshold="adaptive", adaptive_factor=2.0, adaptive_cap=1.0)
    metrics = {
        "mae": MAE(),
        "f_binary": FBeta(**sod),
        "iou_binary": IoU(**sod),
        "f_adaptive": FBeta(**sod, **adaptive),
        "iou_adaptive": IoU(**sod, **adaptive),
        "p_adaptive": Precision(**sod, **adaptive),
        "r_adaptive": Recall(**sod, **adaptive),
        "max_f": MaxFBeta(**sod),
        "curve": PrecisionRecallCurve(**sod),
    }
    out = {}
    for name, m in metrics.items():
        m.update(preds, target)
        out[name] = m.compute()
    out["f_curve"] = metrics["curve"].fbeta_curve()
    return out


def _pooled_curves_numpy(data):
    tp, fp, n_pos = np.zeros(256), np.zeros(256), 0
    for pred8, gt in data:
        for k in range(256):
            b = pred8 >= k
            tp[k] += np.sum(b & gt)
            fp[k] += np.sum(b & ~gt)
        n_pos += gt.sum()
    p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    r = tp / n_pos
    return dict(p=p, r=r, f=np.array([_f(a, b) for a, b in zip(p, r, strict=True)]))


def _pooled_adaptive_numpy(data, factor=2.0):
    tp = fp = fn = 0
    for pred8, gt in data:
        pred = pred8.astype(np.float64) / 255
        b = pred >= min(factor * pred.mean(), 1.0)
        tp, fp, fn = tp + np.sum(b & gt), fp + np.sum(b & ~gt), fn + np.sum(~b & gt)
    p, r = tp / (tp + fp), tp / (tp + fn)
    return dict(p=p, r=r, f=_f(p, r), iou=tp / (tp + fp + fn))


@pytest.mark.parametrize("averaging", ["per_image", "pooled"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_against_pysodmetrics(averaging, dtype):
    data = _sod_data()
    # include an image with empty foreground in both maps: pysodmetrics scores it 0,
    # which our empty_score=0.0 reproduces
    data.append((np.zeros((6, 7), np.uint8), np.zeros((6, 7), bool)))
    ref = _pysod(data, sample_based=averaging == "per_image")
    ours = _ours(data, averaging, dtype)
    tol = 1e-6
    assert float(ours["mae"]) == pytest.approx(ref["mae"], abs=tol)
    assert float(ours["f_binary"]) == pytest.approx(ref["f"]["binary"], abs=tol)
    assert float(ours["iou_binary"]) == pytest.approx(ref["iou"]["binary"], abs=tol)
    # pysodmetrics 1.6.2 pools only its 'binary' scores with sample_based=False (its
    # adaptive and dynamic scores stay image-averaged); pooled references for those
    # are computed by hand in numpy
    if averaging == "per_image":
        adaptive_ref = {k: ref[k]["adaptive"] for k in ("f", "iou", "p", "r")}
        curve_ref = {k: ref[k]["dynamic"][::-1] for k in ("f", "p", "r")}  # pysod runs 255 -> 0
    else:
        adaptive_ref = _pooled_adaptive_numpy(data)
        curve_ref = _pooled_curves_numpy(data)
    assert float(ours["f_adaptive"]) == pytest.approx(adaptive_ref["f"], abs=tol)
    assert float(ours["iou_adaptive"]) == pytest.approx(adaptive_ref["iou"], abs=tol)
    assert float(ours["p_adaptive"]) == pytest.approx(adaptive_ref["p"], abs=tol)
    assert float(ours["r_adaptive"]) == pytest.approx(adaptive_ref["r"], abs=tol)
    prec, rec, _ = ours["curve"]
    np.testing.assert_allclose(prec.numpy(), curve_ref["p"], atol=tol)
    np.testing.assert_allclose(rec.numpy(), curve_ref["r"], atol=tol)
    np.testing.assert_allclose(ours["f_curve"].numpy(), curve_ref["f"], atol=tol)
    assert float(ours["max_f"]) == pytest.approx(curve_ref["f"].max(), abs=tol)
    assert float(ours["f_curve"].mean()) == pytest.approx(curve_ref["f"].mean(), abs=tol)  # meanF


def test_empty_score_default_differs_from_pysodmetrics():
    z = torch.zeros(4, 4)
    assert _value(FBeta(positive="focus"), z, z) == 1.0
    assert _value(FBeta(positive="focus", empty_score=0.0), z, z) == 0.0


# --------------------------------------------------------------------------- #
# quantisation and the benchmark helpers
# --------------------------------------------------------------------------- #
def test_quantize_8bit_values_land_in_their_bin():
    k = torch.arange(256)
    for dtype in (torch.float32, torch.float64):
        assert torch.equal(F.quantize((k.to(dtype) / 255)[None]).long()[0], k)
        # blur maps of 8-bit focus maps too (1 - k/255 is not exact in float)
        assert torch.equal(F.quantize((1 - k.to(dtype) / 255)[None]).long()[0], 255 - k)


def test_numpy_baseline_agrees_with_curve():
    g = torch.Generator().manual_seed(5)
    p = torch.randint(0, 256, (1, 19, 29), generator=g).float() / 255
    t = torch.rand(1, 19, 29, generator=g) > 0.5
    m = PrecisionRecallCurve()  # blur positive
    m.update(p, t)
    prec, rec, _ = m.compute()
    blur8 = F.quantize(1 - p[0]).numpy().astype(np.uint8)
    ref = baseline_numpy(blur8, ~t[0].numpy())
    np.testing.assert_allclose(prec.numpy(), ref["precision"], atol=1e-6)
    np.testing.assert_allclose(rec.numpy(), ref["recall"], atol=1e-6)
    np.testing.assert_allclose(m.fbeta_curve().numpy(), ref["fbeta"], atol=1e-6)


def test_bench_smoke():
    res = bench_metrics(n=3, size=(24, 40), baseline_n=2)
    for key in ("ours_images_per_s", "baseline_images_per_s", "speedup", "est_seconds_1605"):
        assert res[key] > 0
    assert res["max_abs_curve_diff"] < 1e-6
    assert set(res["values"]) == {"mae", "fbeta", "iou"}


def test_collection_checks_inputs_once_with_the_members_messages(monkeypatch):
    from dbd_lightning.metrics import functional

    coll = build_dbd_metrics(max_fbeta=True)
    assert all(not m.validate_args for m in coll.values())  # the members skip their own checks
    calls = []
    real = functional.as_row_groups
    monkeypatch.setattr(functional, "as_row_groups", lambda p, t, validate=True: calls.append(validate) or real(p, t, validate))
    coll.update(PA[None], TA[None])
    assert calls.count(True) == 1 and calls.count(False) == len(coll)
    # bad inputs still fail, with the same messages, before any member state changes
    with pytest.raises(ValueError, match=r"\[-2\.5, 3\].*sigmoid"):
        coll.update(torch.tensor([[-2.5, 3.0]]), torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"non-binary values \[0\.5\].*half"):
        coll(torch.tensor([[0.2, 0.3]]), torch.tensor([[0.5, 1.0]]))  # forward checks too
    assert int(coll["mae"].count) == 1
    # validate_args=False: nothing is checked anywhere
    calls.clear()
    build_dbd_metrics(validate_args=False).update(PA[None], TA[None])
    assert True not in calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_binarize_equals_torch_comparison_at_the_boundary(dtype):
    from dbd_lightning.metrics import functional

    gen = torch.Generator().manual_seed(0)
    s = torch.rand(3, 5000, generator=gen, dtype=dtype)
    below = torch.nextafter(torch.tensor(0.5, dtype=dtype), torch.tensor(0.0, dtype=dtype))
    s[0, :4] = torch.tensor([0.5, float(below), 0.3, 1.0], dtype=dtype)
    adaptive = functional.adaptive_threshold(s)  # float64 (B, 1): cast to the map's dtype first
    at = adaptive[1, 0].to(dtype)  # map values at and next to the cast threshold
    s[1, :3] = torch.stack([at, torch.nextafter(at, torch.zeros_like(at)), torch.nextafter(at, torch.ones_like(at))])
    for thr in (0.5, 0.3, adaptive):
        for strict in (False, True):
            t = thr.to(dtype) if isinstance(thr, torch.Tensor) else thr
            expected = s > t if strict else s >= t
            got = functional.binarize(s, thr, strict)
            assert got.dtype == torch.bool and torch.equal(got, expected), (thr, strict)
