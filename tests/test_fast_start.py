"""Fast start: what the light commands import, the released ONNX graph and its verification, the progress line.

The timings themselves are measured in ``make bench`` (``startup_help``, ``startup_predict_zoo``);
these tests check the behaviour that makes them fast: no Lightning / torch where none is needed,
a shipped graph used only when its hashes match, the same maps as the torch predictor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dbd_lightning.inference import onnx_graphs
from dbd_lightning.inference.backends import OnnxRuntimeBackend, onnxruntime_available
from dbd_lightning.inference.onnx_graphs import released_graph, valid_released_graph
from dbd_lightning.utils import progress

HEAVY = ("torch", "lightning", "wandb", "albumentations", "timm", "torchmetrics", "matplotlib", "kornia")
#: modules that must import none of HEAVY: the entry points (their --help) and the inference modules predict uses
#: (data.prepare is not among them: its benchmark classes are torch Datasets, so it imports torch)
LIGHT = ("dbd_lightning.predict", "dbd_lightning.train", "dbd_lightning.eval", "dbd_lightning.export",
         "dbd_lightning.synth", "dbd_lightning.zoo.__main__", "dbd_lightning.bench.runner", "dbd_lightning.convert",
         "dbd_lightning.data.check", "dbd_lightning.inference.predictor",
         "dbd_lightning.inference.onnx_predictor", "dbd_lightning.inference.image_predictor",
         "dbd_lightning.inference.onnx_graphs", "dbd_lightning.inference.modes", "dbd_lightning.runs.run_meta")
ZOO = Path(onnx_graphs.PACKAGE_DIR) / "zoo" / "weights"
needs_ort = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed")


def _python(code: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1",
                "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=600)


def test_entry_points_and_inference_modules_import_no_heavy_library(tmp_path):
    proc = _python(f"""
        import importlib, json, sys
        for name in {LIGHT!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(k for k in {HEAVY!r} if k in sys.modules)))
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_predict_help_imports_no_torch(tmp_path):
    proc = _python("""
        import json, sys
        sys.argv = ["predict", "--help"]
        from dbd_lightning.predict import main
        try:
            main()
        except SystemExit:
            pass
        print(json.dumps(sorted(k for k in ("torch", "lightning") if k in sys.modules)))
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ckpt" in proc.stdout  # Hydra's help shows the config
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def _zoo_graph_present(name: str = "dffnet_lite0_synth") -> bool:
    return released_graph(ZOO / f"{name}.safetensors").is_file()


@needs_ort
@pytest.mark.skipif(not _zoo_graph_present(), reason="the released graph is not installed")
def test_zoo_photo_is_predicted_without_torch_or_lightning(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(tmp_path / "one.png")
    proc = _python(f"""
        import json, sys
        sys.argv = ["predict", "ckpt=zoo:dffnet_lite0_synth", "input={tmp_path / 'one.png'}",
                    "output={tmp_path / 'out'}", "device=cpu", "hydra.run.dir={tmp_path / 'run'}"]
        from dbd_lightning.predict import main
        main()
        print(json.dumps(sorted(k for k in ("torch", "lightning", "timm") if k in sys.modules)))
    """, tmp_path, DBD_CACHE_DIR=str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
    focus = np.asarray(Image.open(tmp_path / "out" / "focus" / "one.png"))
    assert focus.shape == (60, 80)
    assert not (tmp_path / "cache").exists()  # the shipped graph: nothing exported, nothing cached


@needs_ort
@pytest.mark.skipif(not _zoo_graph_present(), reason="the released graph is not installed")
def test_released_graph_predictor_equals_the_torch_predictor():
    from dbd_lightning.inference.onnx_predictor import OnnxGraphPredictor, released_graph_predictor
    from dbd_lightning.inference.predictor import CheckpointPredictor
    from dbd_lightning.zoo import resolve_zoo

    entry = resolve_zoo("zoo:dffnet_lite0_synth")
    whole = {"tile": {"mode": False}}
    fast = released_graph_predictor(entry, whole, backend="onnxruntime", device="cpu")
    assert isinstance(fast, OnnxGraphPredictor)
    ref_ort = CheckpointPredictor.from_run(entry, whole, device="cpu", backend="onnxruntime")
    assert ref_ort.backend.path == fast.graph  # the torch path uses the same shipped graph
    ref_torch = CheckpointPredictor.from_run(entry, whole, device="cpu", backend="torch")
    rng = np.random.default_rng(1)
    for shape in ((200, 300, 3), (400, 520, 3)):  # network input 320: one smaller, one larger
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        got = fast.predict_image(rgb)["focus"]
        assert got.dtype == np.float32 and got.shape == shape[:2]
        # the same graph; resize / sigmoid in numpy + cv2 instead of torch: float32 rounding (3e-6 seen)
        np.testing.assert_allclose(got, ref_ort.predict_image(rgb)["focus"], atol=1e-5)
        np.testing.assert_allclose(got, ref_torch.predict_image(rgb)["focus"], atol=1e-4)
    # the scale-aware mode goes through the same geometry
    scale = {"infer": {"mode": "scale", "scale": 0.5}}
    scaled = released_graph_predictor(entry, scale, backend="auto", device="cpu")
    rgb = rng.integers(0, 256, (256, 384, 3), dtype=np.uint8)
    ref = CheckpointPredictor.from_run(entry, scale, device="cpu", backend="onnxruntime")
    np.testing.assert_allclose(scaled.predict_image(rgb)["focus"], ref.predict_image(rgb)["focus"], atol=1e-5)


@needs_ort
def test_released_graph_predictor_is_not_used_where_torch_decides():
    from dbd_lightning.inference.onnx_predictor import released_graph_predictor
    from dbd_lightning.zoo import resolve_zoo

    entry = resolve_zoo("zoo:dffnet_lite0_synth")
    assert released_graph_predictor(entry, backend="torch", device="cpu") is None
    assert released_graph_predictor(entry, backend="onnxruntime_int8", device="cpu") is None
    assert released_graph_predictor(entry, backend="auto", device="cuda") is None


class _Conv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x):
        return {"logits": self.conv(x)}


@pytest.fixture()
def fake_release(tmp_path, monkeypatch):
    """A 'package' folder holding a released checkpoint file and its graph (written by the release tool)."""
    from dbd_lightning.zoo.graphs import write_released_graph

    package = tmp_path / "pkg"
    weights = package / "zoo" / "weights"
    weights.mkdir(parents=True)
    monkeypatch.setattr(onnx_graphs, "PACKAGE_DIR", package)
    torch.manual_seed(0)
    net = _Conv().eval()
    ckpt = weights / "tiny.safetensors"
    ckpt.write_bytes(b"the released weights")  # only its hash matters to the graph's verification
    write_released_graph(net, ckpt, (32, 32))
    return net, ckpt


@needs_ort
def test_released_graph_is_verified_by_both_hashes(fake_release):
    _, ckpt = fake_release
    path, meta = valid_released_graph(ckpt)
    assert path == released_graph(ckpt) and meta["max_abs_diff"] and max(meta["max_abs_diff"].values()) <= 1e-4
    assert valid_released_graph(ckpt.parent.parent.parent.parent / "elsewhere.safetensors") is None  # not shipped
    graph = bytearray(path.read_bytes())
    graph[-1] ^= 0xFF  # one flipped byte: the graph's hash differs
    path.write_bytes(bytes(graph))
    assert valid_released_graph(ckpt) is None
    graph[-1] ^= 0xFF
    path.write_bytes(bytes(graph))
    assert valid_released_graph(ckpt) is not None
    ckpt.write_bytes(b"other weights")  # new weights: the graph no longer belongs to them
    assert valid_released_graph(ckpt) is None


@needs_ort
def test_backend_uses_the_released_graph_and_exports_when_it_differs(fake_release, tmp_path):
    net, ckpt = fake_release
    cache = tmp_path / "cache"
    backend = OnnxRuntimeBackend(net, input_size=(32, 32), checkpoint=ckpt, cache_dir=cache)
    assert backend.path == released_graph(ckpt) and not list(cache.glob("*.onnx"))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        want = net(x)["logits"]
    torch.testing.assert_close(backend.run(x), want, atol=1e-5, rtol=1e-5)
    graph = released_graph(ckpt)
    graph.write_bytes(graph.read_bytes()[:-7] + b"altered")
    fallback = OnnxRuntimeBackend(net, input_size=(32, 32), checkpoint=ckpt, cache_dir=cache)
    assert fallback.path.parent == cache and fallback.path.is_file()  # exported into the cache instead
    assert released_graph(ckpt).read_bytes().endswith(b"altered")  # the package file is never rewritten
    torch.testing.assert_close(fallback.run(x), want, atol=1e-5, rtol=1e-5)


def test_slow_step_speaks_once_only_when_slow(monkeypatch):
    said: list[str] = []
    spoken = threading.Event()

    def say(message: str) -> None:
        said.append(message)
        spoken.set()

    monkeypatch.setattr(progress, "say", say)
    with progress.slow_step("fast step", after=30.0):
        pass
    assert said == []
    with progress.slow_step("exporting once", after=0.01):
        assert spoken.wait(30)  # the block outlasts `after`: its line is shown while it runs
    assert said == ["exporting once"]


def test_say_falls_back_to_stderr_without_logging(monkeypatch, capsys):
    import logging

    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    progress.say("exporting the ONNX graph once")
    assert capsys.readouterr().err == "exporting the ONNX graph once\n"


def test_zoo_folder_has_no_stray_graph_files():
    """Every shipped graph has its sidecar and belongs to a released model (no orphan files in the package)."""
    for graph in ZOO.glob("*.onnx"):
        stem = graph.name.removesuffix(".dyn.onnx")
        assert (ZOO / f"{stem}.safetensors").is_file() and graph.with_suffix(".json").is_file(), graph
