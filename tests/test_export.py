"""ONNX / TorchScript export of a DBD checkpoint matches PyTorch (onnxruntime in the test extra)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from dbd_lightning.export import ExportWrapper, export, run_onnx, run_torchscript
from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.models import registry
from dbd_lightning.models.btbnet import BTBNet
from dbd_lightning.models.btbnet.torch_model import scaled_size
from dbd_lightning.runs.resolver import resolve_checkpoint

from .helpers import compose_cfg
from .run_fixtures import make_run

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs"), seed=3)


def test_onnx_and_torchscript_match_pytorch_on_a_new_size(tmp_path, run_dir):
    cfg = compose_cfg(tmp_path / "h", [f"ckpt={run_dir}", f"output_dir={tmp_path}/exp"], config_name="export")
    manifest = export(cfg)
    assert set(manifest["files"]) == {"onnx", "torchscript"}
    assert json.loads((tmp_path / "exp" / "export.json").read_text())["files"] == manifest["files"]
    # independent check: the predictor's network on a normalised input of another size and batch
    pred = CheckpointPredictor.from_run(resolve_checkpoint(run_dir), device="cpu")
    x = torch.rand(3, 3, 96, 160, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = torch.sigmoid(pred.net((x - pred.mean) / pred.std)["logits"]).numpy()
    onnx_out = run_onnx(tmp_path / "exp" / "model.onnx", x.numpy())
    ts_out = run_torchscript(tmp_path / "exp" / "model.torchscript.pt", x.numpy())
    assert onnx_out.shape == ts_out.shape == (3, 1, 96, 160)
    np.testing.assert_allclose(onnx_out, ref, atol=1e-4)
    np.testing.assert_allclose(ts_out, ref, atol=1e-5)
    assert all(d < 1e-4 for d in manifest["max_abs_diff"].values())


def test_bad_export_requests_fail_clearly(tmp_path, run_dir):
    with pytest.raises(ValueError, match=r"formats=\[tflite\] is not valid: it must be a non-empty list of onnx"):
        export(compose_cfg(tmp_path / "h", [f"ckpt={run_dir}", "formats=[tflite]"], config_name="export"))
    with pytest.raises(ValueError, match="opset=99 is not valid: this torch exports ONNX opsets 7 to"):
        export(compose_cfg(tmp_path / "h", [f"ckpt={run_dir}", "formats=[onnx]", "opset=99",
                                            f"output_dir={tmp_path}/exp99"], config_name="export"))
    assert not (tmp_path / "exp99").exists()
    with pytest.raises(ValueError, match="output must be"):
        ExportWrapper(torch.nn.Identity(), (0, 0, 0), (1, 1, 1), output="mask")


@pytest.mark.slow
def test_dynamo_onnx_exporter(tmp_path, run_dir):
    pytest.importorskip("onnxscript")
    cfg = compose_cfg(tmp_path / "h", [f"ckpt={run_dir}", f"output_dir={tmp_path}/exp", "formats=[onnx]",
                                       "dynamo=true"], config_name="export")
    assert export(cfg)["max_abs_diff"]["onnx"] < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("model", registry.small_models())
def test_every_dbd_family_exports(tmp_path, model):
    """Each paper's CPU-sized model options (``PAPER.small_models``) export to ONNX and TorchScript."""
    from dbd_lightning.export import export_onnx, export_torchscript
    from dbd_lightning.utils.config import instantiate_network

    cfg = compose_cfg(tmp_path, [f"model={model}", "data.image_size=[64,64]"])
    net = instantiate_network(cfg.model.net).eval()
    wrapper = ExportWrapper(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).eval()
    x = torch.rand(1, 3, 64, 64)
    x2 = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        ref = wrapper(x2).numpy()
    onnx_path = export_onnx(wrapper, x, tmp_path / "m.onnx")
    ts_path = export_torchscript(wrapper, x, tmp_path / "m.pt")
    np.testing.assert_allclose(run_onnx(onnx_path, x2.numpy()), ref, atol=1e-4)
    np.testing.assert_allclose(run_torchscript(ts_path, x2.numpy()), ref, atol=1e-5)


# BTBNet (fast, default suite): its streams see the image at round(s H) x round(s W); the exported
# graphs must recompute those sizes from the runtime shape exactly as eager PyTorch does
BTBNET_TINY = dict(widths=[4, 8, 8, 16, 16], ffic_channels=[8, 8, 4, 1], fnet_channels=[8, 8, 8, 1],
                   rrnet_channels=[8, 8, 8, 1])


def test_btbnet_exports_with_dynamic_sizes(tmp_path):
    from dbd_lightning.export import export_onnx, export_torchscript

    torch.manual_seed(0)
    net = BTBNet(scales=[1.0, 0.8, 0.6], **BTBNET_TINY).eval()
    wrapper = ExportWrapper(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).eval()
    x = torch.rand(1, 3, 32, 32)
    onnx_path = export_onnx(wrapper, x, tmp_path / "m.onnx")
    ts_path = export_torchscript(wrapper, x, tmp_path / "m.pt")
    g = torch.Generator().manual_seed(1)
    # odd sizes, sizes whose scaled sides round up and down, another batch
    for shape in [(2, 3, 48, 64), (1, 3, 37, 50), (1, 3, 29, 41)]:
        x2 = torch.rand(*shape, generator=g)
        with torch.no_grad():
            ref = wrapper(x2).numpy()
        onnx_out, ts_out = run_onnx(onnx_path, x2.numpy()), run_torchscript(ts_path, x2.numpy())
        assert onnx_out.shape == ts_out.shape == (shape[0], 1, *shape[2:])
        np.testing.assert_allclose(onnx_out, ref, atol=1e-4)
        np.testing.assert_allclose(ts_out, ref, atol=1e-5)


class _StreamInputSizes(torch.nn.Module):
    """The (H, W) of each BTBNet stream's resized input, read off the resized tensors."""

    def __init__(self, scales):
        super().__init__()
        self.net = BTBNet(scales=scales, **BTBNET_TINY)

    def forward(self, x):
        h, w = x.shape[-2:]
        sizes = [torch._shape_as_tensor(self.net._resize(x, scaled_size(h, w, s), s == 1.0))[-2:]
                 for s in self.net.scales]
        return torch.stack(sizes)


def test_btbnet_onnx_stream_sizes_equal_eager_for_many_input_sizes(tmp_path):
    import onnxruntime as ort

    scales = [1.0, 0.8, 0.6, 0.5, 0.4, 0.7, 1.3]
    path = tmp_path / "sizes.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_StreamInputSizes(scales).eval(), (torch.rand(1, 1, 64, 64),), str(path), dynamo=False,
                          input_names=["x"], output_names=["sizes"], dynamic_axes={"x": {2: "h", 3: "w"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h in range(17, 131):
        w = 147 - h
        got = session.run(None, {"x": np.zeros((1, 1, h, w), np.float32)})[0].tolist()
        assert got == [[max(1, round(s * h)), max(1, round(s * w))] for s in scales], (h, w)
