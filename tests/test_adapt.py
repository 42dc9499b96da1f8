"""AdaBN (models/components/batchnorm_stats.py, python -m dbd_lightning.adapt): BatchNorm statistics equal the
hand-computed per-batch averages, weights are untouched, and the adapted file predicts with them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from dbd_lightning.adapt import main as adapt_main
from dbd_lightning.models.components.batchnorm_stats import recompute_batchnorm_statistics

from .run_fixtures import make_run, write_image


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 2, 1)
        self.bn = nn.BatchNorm2d(2, momentum=0.1)
        self.drop = nn.Dropout(0.9)  # before the BatchNorm: must stay off while the statistics are gathered

    def forward(self, x):
        return self.bn(self.drop(self.conv(x)))


def test_statistics_are_the_average_of_per_batch_mean_and_unbiased_variance():
    net = ConvBN()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(2, 3, 4, 5, generator=gen) * s + s for s in (1.0, 3.0)]
    with torch.no_grad():
        feats = [net.conv(b) for b in batches]  # (N, 2, H, W) per batch
    mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.transpose(0, 1).reshape(2, -1).var(dim=1, unbiased=True) for f in feats]).mean(0)
    assert recompute_batchnorm_statistics(net, iter(batches)) == 1
    torch.testing.assert_close(net.bn.running_mean, mean, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(net.bn.running_var, var, atol=1e-6, rtol=1e-5)
    assert not net.training and not net.bn.training and net.bn.momentum == 0.1  # eval mode, momentum restored
    for k, v in weights.items():
        torch.testing.assert_close(net.state_dict()[k], v, atol=0, rtol=0)


def test_no_batch_is_an_error():
    with pytest.raises(ValueError, match="no batch"):
        recompute_batchnorm_statistics(ConvBN(), iter([]))


def test_cli_writes_a_released_file_whose_statistics_are_the_photos(tmp_path, capsys):
    from dbd_lightning import load_predictor
    from dbd_lightning.data.normalization import IMAGENET_MEAN, IMAGENET_STD
    from dbd_lightning.inference.predictor import CheckpointPredictor
    from dbd_lightning.runs.resolver import resolve_checkpoint

    run = make_run(tmp_path / "runs", seed=0)
    photos = tmp_path / "photos"
    for i, (h, w) in enumerate([(40, 60), (50, 50), (70, 30)]):
        write_image(photos / f"p{i}.png", h, w, seed=i)
    out = tmp_path / "adapted" / "tiny_adabn.safetensors"
    assert adapt_main([f"ckpt={run}", f"photos={photos}", f"out={out}", "batch=2"]) == 0
    assert out.is_file() and out.with_suffix(".md").read_text().count("Training data:") == 1

    # by hand: the same network, BatchNorm statistics over the photos resized to 64 x 64, batches of 2
    source = CheckpointPredictor.from_run(resolve_checkpoint(run), device="cpu", backend="torch").net
    imgs = [cv2.resize(cv2.cvtColor(cv2.imread(str(photos / f"p{i}.png")), cv2.COLOR_BGR2RGB), (64, 64),
                       interpolation=cv2.INTER_LINEAR) for i in range(3)]
    # a contiguous (N, C, H, W) batch, as the predictor's network input: a channels-last one runs another
    # convolution kernel, whose float32 sums differ in the last bit
    x = (torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous().float()
         - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255) / (torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
    recompute_batchnorm_statistics(source, iter([x[:2], x[2:]]))
    saved = load_file(out)
    expected = source.state_dict()
    means = [k for k in expected if k.endswith("running_mean")]
    assert means and all(k in saved for k in means)
    for k in means:  # released in float16
        torch.testing.assert_close(saved[k].float(), expected[k].half().float(), atol=0, rtol=0)
    assert max(saved[k].abs().max().item() for k in means) > 0  # not the reset statistics (zeros)

    rgb = imgs[0]
    adapted = load_predictor(str(out), device="cpu", backend="torch")(rgb)
    original = load_predictor(str(run), device="cpu", backend="torch")(rgb)
    assert adapted.shape == original.shape and np.abs(adapted - original).max() > 1e-4


@pytest.mark.parametrize("args, key", [
    (["photos=/nonexistent/photos", "out=a.safetensors"], "photos"),
    (["photos=PHOTOS", "out=a.png"], "out="),
    (["photos=PHOTOS", "out=a.safetensors", "batch=0"], "batch"),
    (["photos=PHOTOS", "out=a.safetensors", "flip=maybe"], "flip"),
    (["photos=PHOTOS", "out=a.safetensors", "colour=red"], "'colour=red'"),
    (["photos=PHOTOS"], "out=..."),
])
def test_cli_bad_input_exits_2_naming_the_key(tmp_path, capsys, args, key):
    run = make_run(tmp_path / "runs", seed=0)
    write_image(tmp_path / "photos" / "p.png", 32, 32)
    argv = [f"ckpt={run}", *(a.replace("PHOTOS", str(tmp_path / "photos")) for a in args)]
    with pytest.raises(SystemExit) as exc:
        adapt_main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and key in err and "Traceback" not in err


def test_cli_never_overwrites_a_file_it_did_not_write(tmp_path, capsys):
    run = make_run(tmp_path / "runs", seed=0)
    write_image(tmp_path / "photos" / "p.png", 32, 32)
    out = tmp_path / "mine.safetensors"
    out.write_bytes(b"a user's own file")
    with pytest.raises(SystemExit) as exc:
        adapt_main([f"ckpt={run}", f"photos={tmp_path / 'photos'}", f"out={out}"])
    assert exc.value.code == 2 and out.read_bytes() == b"a user's own file"
