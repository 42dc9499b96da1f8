"""backend=torch|onnxruntime|auto: equal outputs per family, the ONNX cache, fallbacks, missing onnxruntime."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest
import torch

from dbd_lightning.inference import (
    BackendUnavailableError,
    OnnxRuntimeBackend,
    TorchBackend,
    make_backend,
    onnx_cache,
)
from dbd_lightning.inference import backends as backends_mod
from dbd_lightning.inference.backends import resolve_backend
from dbd_lightning.inference.fold_bn import fold_batchnorm
from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.runs.resolver import resolve_checkpoint
from dbd_lightning.utils.config import instantiate_network

from .helpers import compose_cfg
from .run_fixtures import make_run, write_image

pytest.importorskip("onnxruntime")

# every family whose network exports to ONNX, at a small size (resnet18 encoders, narrow BTBNet)
FAMILIES = {
    "dffnet_small": [],
    "pdnet_small": [],
    "ddnet_small": [],
    "rdffnet": ["model.net.encoder=resnet18"],
    "btbnet_small": ["model.net.widths=[4,8,8,16,16]", "model.net.ffic_channels=[8,8,4,1]",
                     "model.net.fnet_channels=[8,8,8,1]", "model.net.rrnet_channels=[8,8,8,1]"],
}


def _eager(net, x):
    with torch.no_grad():
        return torch.sigmoid(net(x)["logits"].float())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_exporting_family_gives_torch_outputs_in_both_backends(tmp_path, family):
    cfg = compose_cfg(tmp_path, [f"model={family}", "data.image_size=[64,64]", *FAMILIES[family]])
    torch.manual_seed(0)
    net = instantiate_network(cfg.model.net).eval()
    for m in net.modules():  # non-trivial BatchNorm statistics, so a wrong fold would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    ort_backend = make_backend("onnxruntime", net, input_size=(64, 64), cache_dir=tmp_path / "cache")
    torch_backend = make_backend("torch", net)
    assert isinstance(ort_backend, OnnxRuntimeBackend) and isinstance(torch_backend, TorchBackend)
    g = torch.Generator().manual_seed(1)
    for shape in [(2, 3, 64, 64), (1, 3, 96, 64)]:  # batch and size other than the export example
        x = torch.randn(*shape, generator=g)
        ref = _eager(net, x)
        for backend in (ort_backend, torch_backend):
            got = torch.sigmoid(backend.run(x))
            assert got.shape == ref.shape
            assert float((got - ref).abs().max()) < 1e-4, (family, backend.name, shape)


def test_fold_batchnorm_folds_the_convs_and_leaves_the_network_untouched():
    from dbd_lightning.models.dffnet import DFFNet

    torch.manual_seed(0)
    net = DFFNet("resnet18", channels=8).eval()
    keys = {k: v.clone() for k, v in net.state_dict().items()}
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.2, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 64, 64)
    folded, n, diff = fold_batchnorm(net, x)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert n == n_bn == sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # all of them fold
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert net.state_dict().keys() == keys.keys()  # the trained network keeps its keys
    y = torch.randn(2, 3, 96, 64)
    np.testing.assert_allclose(_eager(folded, y), _eager(net, y), atol=1e-5)


def test_fold_batchnorm_refuses_a_conv_whose_output_also_feeds_another_layer():
    class Branchy(torch.nn.Module):  # conv output goes to the BN and, unnormalised, to the sum
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)
            self.bn.running_mean.fill_(0.7)

        def forward(self, x):
            y = self.conv(x)
            return {"logits": (self.bn(y) + y).sum(1, keepdim=True)}

    net = Branchy().eval()
    same, n, diff = fold_batchnorm(net, torch.randn(1, 3, 16, 16))
    assert same is net and n == 0 and diff > 1e-3


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs"), seed=4)


def _spy_exports(monkeypatch) -> list:
    calls = []
    real = onnx_cache.export_graph

    def spy(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx_cache, "export_graph", spy)
    return calls


def test_onnx_graph_is_cached_beside_the_checkpoint_and_reused(tmp_path, run_dir, monkeypatch):
    run = resolve_checkpoint(run_dir)
    calls = _spy_exports(monkeypatch)
    first = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime")
    assert isinstance(first.backend, OnnxRuntimeBackend) and len(calls) == 1
    path = first.backend.path
    assert path.parent == run.ckpt.parent / "onnx" and path.name == f"{run.ckpt.stem}.dyn.onnx"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["checkpoint"]["sha256"] == onnx_cache.file_sha256(run.ckpt) and meta["dynamic"] is True
    second = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime")
    assert len(calls) == 1 and second.backend.path == path  # no second export
    rgb = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    torch_pred = CheckpointPredictor.from_run(run, device="cpu", backend="torch")
    np.testing.assert_allclose(second.predict_image(rgb)["focus"], torch_pred.predict_image(rgb)["focus"], atol=1e-4)


def test_stale_and_corrupt_cached_graphs_are_rebuilt(tmp_path, monkeypatch):
    run = resolve_checkpoint(make_run(tmp_path, seed=5))
    calls = _spy_exports(monkeypatch)
    path = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime").backend.path
    assert len(calls) == 1
    # stale: the checkpoint now holds other weights -> exported again, the new graph gives the new outputs
    state = torch.load(run.ckpt, weights_only=True)
    state["state_dict"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["state_dict"].items()}
    torch.save(state, run.ckpt)
    pred = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime")
    assert len(calls) == 2
    x = torch.randn(1, 3, 64, 64)
    np.testing.assert_allclose(torch.sigmoid(pred.backend.run(x)), _eager(pred.net, x), atol=1e-4)
    # corrupt: garbage bytes -> hash mismatch -> exported again
    path.write_bytes(b"not an onnx file")
    CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime")
    assert len(calls) == 3
    # corrupt with a matching sidecar (only loading the graph can tell) -> exported again
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    meta = json.loads(path.with_suffix(".json").read_text())
    meta.update(onnx_size=path.stat().st_size, onnx_sha256=onnx_cache.file_sha256(path))
    path.with_suffix(".json").write_text(json.dumps(meta))
    pred = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime")
    assert len(calls) == 4 and isinstance(pred.backend, OnnxRuntimeBackend)


def test_read_only_checkpoint_folder_caches_in_the_cache_dir(tmp_path, monkeypatch):
    run = resolve_checkpoint(make_run(tmp_path, seed=6))
    monkeypatch.setenv("DBD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_cache, "_writable", lambda folder: False)
    path = CheckpointPredictor.from_run(run, device="cpu", backend="onnxruntime").backend.path
    assert path.parent == tmp_path / "cache" / "onnx" and path.name.startswith(f"{run.ckpt.stem}-")


def test_a_network_that_does_not_export_runs_in_torch_with_one_line(caplog):
    class NoOnnx(torch.nn.Module):
        def forward(self, x):
            spectrum = torch.fft.fft2(x[:, :1]).abs()  # no ONNX symbolic in the TorchScript exporter
            return {"logits": spectrum / (1 + spectrum)}

    with caplog.at_level(logging.WARNING, logger=backends_mod.log.name):
        backend = make_backend("onnxruntime", NoOnnx(), input_size=(16, 16), cache_dir=None)
    assert isinstance(backend, TorchBackend)
    lines = [r.getMessage() for r in caplog.records if r.name == backends_mod.log.name]
    assert len(lines) == 1 and "NoOnnx does not run in onnxruntime" in lines[0] and "using torch" in lines[0]
    assert "\n" not in lines[0]


def test_auto_picks_onnxruntime_on_cpu_and_torch_on_gpu_or_without_it(monkeypatch):
    assert resolve_backend("auto", "cpu") == "onnxruntime"
    assert resolve_backend("auto", "cuda") == "torch"
    assert resolve_backend("torch", "cpu") == "torch"
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("tensorrt", "cpu")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    monkeypatch.setattr(backends_mod, "_slow_path_noted", False)
    assert resolve_backend("auto", "cpu") == "torch"
    with pytest.raises(BackendUnavailableError, match=r"needs onnxruntime: pip install '?onnxruntime") as exc:
        resolve_backend("onnxruntime", "cpu")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("hidden", [("onnxruntime",), ("onnx",), ("onnxruntime", "onnx")])
def test_auto_without_the_fast_path_says_so_once_in_one_line(monkeypatch, caplog, hidden):
    """A plain install has onnxruntime + onnx; without either, auto runs torch and names the missing one(s)
    and the pip command once per process (not once per image or per predictor)."""
    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(backends_mod, "_slow_path_noted", False)
    with caplog.at_level(logging.WARNING, logger=backends_mod.log.name):
        assert [resolve_backend("auto", "cpu") for _ in range(3)] == ["torch"] * 3
        assert resolve_backend("auto", "cuda") == "torch"
    lines = [r.getMessage() for r in caplog.records if r.name == backends_mod.log.name]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith(f"backend=auto: {' and '.join(hidden)} {'is' if len(hidden) == 1 else 'are'} "
                               "not installed, so the network runs in torch")
    command = lines[0].split("for the fast path: ")[1]
    assert command.startswith("pip install ") and [w.strip("'").split(">")[0].split("=")[0] for w in
                                                   command.split()[2:]] == list(hidden)


def test_auto_with_the_fast_path_says_nothing(monkeypatch, caplog):
    monkeypatch.setattr(backends_mod, "_slow_path_noted", False)
    with caplog.at_level(logging.WARNING, logger=backends_mod.log.name):
        assert resolve_backend("auto", "cpu") == "onnxruntime"
    assert not [r for r in caplog.records if r.name == backends_mod.log.name]


def test_predict_with_onnxruntime_missing_exits_2_with_the_pip_command(tmp_path, run_dir, monkeypatch, capsys):
    from dbd_lightning import predict

    image = write_image(tmp_path / "in" / "a.png", 40, 50)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr(sys, "argv", ["predict", f"ckpt={run_dir}", f"input={image}", f"output={tmp_path}/out",
                                      "backend=onnxruntime", f"hydra.run.dir={tmp_path}/h"])
    with pytest.raises(SystemExit) as exc:
        predict.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: backend=onnxruntime needs onnxruntime: pip install ")
    assert err[-1].endswith("(or use backend=torch)")
    assert not (tmp_path / "out" / "focus").exists()


def test_pipelines_say_in_one_line_that_they_run_in_torch(caplog):
    from dbd_lightning.inference.backends import note_pipeline_backend

    with caplog.at_level(logging.INFO, logger=backends_mod.log.name):
        note_pipeline_backend("auto", "karaali")
        note_pipeline_backend("torch", "karaali")
        assert not caplog.records
        note_pipeline_backend("onnxruntime", "karaali")
    assert [r.getMessage() for r in caplog.records] == [
        "backend=onnxruntime: the pipeline model=karaali runs in torch (only ckpt= networks are exported to ONNX)"]
