"""backend=onnxruntime_int8: which convolutions are quantized, the recorded agreement, the cache, the refusal."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
import torch

from dbd_lightning.inference.backends import OnnxRuntimeInt8Backend, resolve_backend
from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.inference.quantize import Int8Settings, scene_batches
from dbd_lightning.inference.settings import InferenceSettings, int8_settings
from dbd_lightning.runs.resolver import resolve_checkpoint
from dbd_lightning.utils.errors import UserError

from .run_fixtures import make_run

SMALL = {"calibration_images": 2, "check_images": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return resolve_checkpoint(make_run(tmp_path_factory.mktemp("int8"), seed=11))


def _spy_quantize(monkeypatch) -> list:
    """One entry per int8 graph built (quant_pre_process runs once per build)."""
    calls = []
    from onnxruntime.quantization import shape_inference

    real = shape_inference.quant_pre_process

    def spy(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(shape_inference, "quant_pre_process", spy)
    return calls


def _conv_weight_is_int8(model: onnx.ModelProto) -> dict[str, bool]:
    """Conv node name -> whether its weight arrives through a DequantizeLinear (i.e. is stored as int8)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    return {n.name: producer.get(n.input[1]) is not None and producer[n.input[1]].op_type == "DequantizeLinear"
            for n in model.graph.node if n.op_type == "Conv"}


def test_decoder_convs_are_int8_and_the_recorded_agreement_is_what_torch_gives(run, monkeypatch):
    calls = _spy_quantize(monkeypatch)
    pred = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime_int8", int8=SMALL)
    backend = pred.backend
    assert isinstance(backend, OnnxRuntimeInt8Backend) and len(calls) == 1
    (size, meta), = backend.int8_meta.items()
    assert meta["accepted"] and tuple(meta["size"]) == size == (64, 64)
    path = backend.path.with_name(backend.path.name.replace(".onnx", "") + ".64x64.int8.onnx")
    kinds = _conv_weight_is_int8(onnx.load(str(path)))
    fp32_convs = [n.name for n in onnx.load(str(backend.path)).graph.node if n.op_type == "Conv"]
    # every conv of the float32 graph is there; encoder convs and the last conv stay float32, the rest are int8
    assert sorted(kinds) == sorted(fp32_convs)
    expected_int8 = {n for n in fp32_convs if "/encoder/" not in n} - {fp32_convs[-1]}
    assert {n for n, q in kinds.items() if q} == expected_int8 and len(expected_int8) == meta["quantized_convs"]
    # the sidecar's agreement, recomputed here against eager torch on the same validation scenes
    check = scene_batches("val", SMALL["check_images"], size, pred_mean(pred), pred_std(pred), Int8Settings().seed + 1)
    session = backend.int8_sessions[size]
    diffs = []
    for x in check:
        with torch.inference_mode():
            ref = torch.sigmoid(pred.net(torch.from_numpy(x))["logits"]).numpy()
        got = 1 / (1 + np.exp(-session.run(None, {"image": x})[0]))
        diffs.append(np.abs(ref - got).mean())
    assert float(np.mean(diffs)) == pytest.approx(meta["mean_abs_diff"], abs=1e-4)
    assert 0 < meta["mean_abs_diff"] <= Int8Settings().max_mean_abs_diff


def pred_mean(pred):
    return pred.mean.flatten().tolist()


def pred_std(pred):
    return pred.std.flatten().tolist()


def test_int8_graph_is_cached_and_a_corrupt_one_is_rebuilt(tmp_path, monkeypatch):
    run = resolve_checkpoint(make_run(tmp_path, seed=12))
    calls = _spy_quantize(monkeypatch)
    first = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime_int8", int8=SMALL)
    assert len(calls) == 1
    rgb = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ref = first.predict_image(rgb)["focus"]
    second = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime_int8", int8=SMALL)
    assert len(calls) == 1  # reused, not quantized again
    np.testing.assert_array_equal(second.predict_image(rgb)["focus"], ref)
    path = next((run.ckpt.parent / "onnx").glob("*.int8.onnx"))
    path.write_bytes(b"garbage")
    third = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime_int8", int8=SMALL)
    assert len(calls) == 2
    np.testing.assert_array_equal(third.predict_image(rgb)["focus"], ref)
    # other settings are another graph: quantized again
    CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime_int8", int8={**SMALL, "percentile": 99.9})
    assert len(calls) == 3


def test_an_int8_graph_that_disagrees_too_much_is_refused_and_float32_runs(tmp_path, caplog):
    run = resolve_checkpoint(make_run(tmp_path, seed=13))
    with caplog.at_level(logging.WARNING):
        pred = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime_int8",
                                            int8={**SMALL, "max_mean_abs_diff": 0.0})
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        got = torch.sigmoid(pred.backend.run(x))
    with torch.inference_mode():
        ref = torch.sigmoid(pred.net(x)["logits"])
    np.testing.assert_allclose(got, ref, atol=1e-4)  # the float32 graph, equal to torch
    assert sum("using the float32 graph" in r.getMessage() for r in caplog.records) == 1


def test_int8_settings_errors_name_the_key_and_auto_never_picks_int8():
    with pytest.raises(UserError, match=r"unknown key\(s\) \['calibration'\]"):
        int8_settings({"int8": {"calibration": 3}})
    assert int8_settings({"int8": {"percentile": 99.0}}).percentile == 99.0
    assert int8_settings({"int8": {"calibration_images": 8.0}}).calibration_images == 8
    for bad, message in [({"percentile": "abc"}, r"int8.percentile='abc' must be a number"),
                         ({"calibration_images": 2.5}, r"int8.calibration_images=2.5 must be an integer"),
                         ({"quantize_encoder": 1}, r"int8.quantize_encoder=1 must be true or false"),
                         ({"percentile": 120.0}, r"int8.percentile=120.0 is out of range"),
                         ({"check_images": 0}, r"int8.check_images=0 is out of range")]:
        with pytest.raises(UserError, match=message):
            int8_settings({"int8": bad})
    with pytest.raises(UserError, match=r"tile.window='box' is not a blending window; use one of hann, linear"):
        InferenceSettings.from_mapping({"tile": {"window": "box"}})
    assert resolve_backend("auto", "cpu") == "onnxruntime"
    assert resolve_backend("onnxruntime_int8", "cpu") == "onnxruntime_int8"


def test_predict_with_an_unknown_backend_exits_2_naming_the_backends(tmp_path, run, monkeypatch, capsys):
    import sys

    from dbd_lightning import predict

    from .run_fixtures import write_image

    image = write_image(tmp_path / "in" / "a.png", 40, 50)
    monkeypatch.setattr(sys, "argv", ["predict", f"ckpt={run.run_dir}", f"input={image}", f"output={tmp_path}/out",
                                      "backend=int8", f"hydra.run.dir={tmp_path}/h"])
    with pytest.raises(SystemExit) as exc:
        predict.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("error: backend must be one of ['torch', 'onnxruntime', 'onnxruntime_int8', 'auto'], "
                       "got 'int8'")
    assert not (tmp_path / "out").exists()
