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


def test_a_short_batch_counts_for_its_images():
    # batches of 3 and 1 images: weights 3/4 and 1/4, not 1/2 each (a 9th photo with batch=8 would otherwise be
    # half of the statistics)
    net = ConvBN()
    gen = torch.Generator().manual_seed(2)
    batches = [torch.randn(3, 3, 4, 5, generator=gen), torch.randn(1, 3, 4, 5, generator=gen) * 4 + 3]
    with torch.no_grad():
        feats = [net.conv(b) for b in batches]
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats])
    variances = torch.stack([f.transpose(0, 1).reshape(2, -1).var(dim=1, unbiased=True) for f in feats])
    weights = torch.tensor([[0.75], [0.25]])
    recompute_batchnorm_statistics(net, iter(batches))
    torch.testing.assert_close(net.bn.running_mean, (means * weights).sum(0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(net.bn.running_var, (variances * weights).sum(0), atol=1e-6, rtol=1e-5)
    assert not torch.allclose(net.bn.running_mean, means.mean(0), atol=1e-3)
    # equal batches: torch's own plain average (momentum=None), bit for bit
    plain = ConvBN().eval()  # dropout off, only the BatchNorm layer gathering statistics
    plain.bn.reset_running_stats()
    plain.bn.momentum = None
    plain.bn.train()
    same = [batches[0], batches[0] * 2 + 1, batches[0] - 1]
    with torch.no_grad():
        for x in same:
            plain(x)
    mine = ConvBN()
    recompute_batchnorm_statistics(mine, iter(same))
    assert torch.equal(mine.bn.running_mean, plain.bn.running_mean)
    assert torch.equal(mine.bn.running_var, plain.bn.running_var)


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
    (["photos=PHOTOS", "out=a.safetensors", "method=tent", "method=adabn"], "method is given twice"),
    (["photos=PHOTOS", "out=a.safetensors", "tent_epochs=5", "tent_lr=0.1"], "tent_lr, tent_epochs set TENT"),
    (["photos=PHOTOS", "out=FILE/a.safetensors"], "is a file, not a folder"),
])
def test_cli_bad_input_exits_2_naming_the_key(tmp_path, capsys, args, key):
    run = make_run(tmp_path / "runs", seed=0)
    write_image(tmp_path / "photos" / "p.png", 32, 32)
    (tmp_path / "FILE").write_text("a user's file")
    argv = [f"ckpt={run}", *(a.replace("PHOTOS", str(tmp_path / "photos")).replace("FILE", str(tmp_path / "FILE"))
                             for a in args)]
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



def _refused(argv: list[str], capsys, *words: str) -> None:
    with pytest.raises(SystemExit) as exc:
        adapt_main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("error:") and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def test_cli_refuses_out_before_any_work(tmp_path, capsys, monkeypatch):
    import dbd_lightning.adapt as adapt_module
    from dbd_lightning.runs import released

    run = make_run(tmp_path / "runs", seed=0)
    write_image(tmp_path / "photos" / "p.png", 32, 32)
    photos = f"photos={tmp_path / 'photos'}"
    source = tmp_path / "a" / "m.safetensors"
    assert adapt_main([f"ckpt={run}", photos, f"out={source}"]) == 0
    before = source.read_bytes()

    def no_work(*args, **kwargs):
        raise AssertionError("adapt worked before refusing out")

    monkeypatch.setattr(adapt_module, "_batches", no_work)
    # the source file itself (an earlier release, so the overwrite rule alone would allow it)
    _refused([f"ckpt={source}", photos, f"out={source}", "method=tent"], capsys, "is the file being adapted")
    assert source.read_bytes() == before
    # the package's released models
    monkeypatch.setattr(released, "WEIGHTS_DIR", tmp_path / "a")
    _refused([f"ckpt={run}", photos, f"out={tmp_path / 'a' / 'other.safetensors'}"], capsys, "released models")
    # a user's file at out: refused before the photos are read
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"a user's own file")
    _refused([f"ckpt={run}", photos, f"out={mine}", "method=tent"], capsys, str(mine))
    assert mine.read_bytes() == b"a user's own file"


def test_python_api_refuses_as_the_command_does(tmp_path):
    from dbd_lightning.adapt import adapt
    from dbd_lightning.utils.errors import UserError

    run = make_run(tmp_path / "runs", seed=0)
    write_image(tmp_path / "photos" / "p.png", 32, 32)
    source = adapt(str(run), str(tmp_path / "photos"), str(tmp_path / "a" / "m.safetensors"))
    before = source.read_bytes()
    with pytest.raises(UserError, match="written as a .safetensors file"):  # would have written a/m.safetensors
        adapt(str(source), str(tmp_path / "photos"), str(tmp_path / "a" / "m"), method="tent")
    with pytest.raises(UserError, match="tent_lr set TENT, but method=adabn"):
        adapt(str(run), str(tmp_path / "photos"), str(tmp_path / "b.safetensors"), tent_lr=5.0)
    assert source.read_bytes() == before and not (tmp_path / "b.safetensors").exists()


def test_cli_refuses_diverged_weights_and_writes_nothing(tmp_path, capsys):
    run = make_run(tmp_path / "runs", seed=0)
    for i in range(3):
        write_image(tmp_path / "photos" / f"p{i}.png", 40, 48, seed=i)
    out = tmp_path / "o" / "q.safetensors"
    _refused([f"ckpt={run}", f"photos={tmp_path / 'photos'}", f"out={out}", "method=tent", "tent_lr=1e30",
              "tent_epochs=3", "batch=1"], capsys, "not finite in float16", "smaller tent_lr")
    assert not out.parent.exists()  # not even its folder


def test_release_refuses_weights_beyond_float16():
    from dbd_lightning.zoo.writer import non_finite_tensors

    state = {"a": torch.ones(2), "b": torch.tensor([1.0, 7.0e4]), "c": torch.tensor([float("nan")]),
             "n": torch.tensor(3)}
    assert non_finite_tensors(state) == ["b", "c"]  # 70000 > float16's 65504: inf once stored


def test_card_names_a_random_subset_only_when_there_is_one(tmp_path):
    run = make_run(tmp_path / "runs", seed=0)
    for i in range(3):
        write_image(tmp_path / "photos" / f"p{i}.png", 32, 32, seed=i)
    common = [f"ckpt={run}", f"photos={tmp_path / 'photos'}"]
    assert adapt_main([*common, f"out={tmp_path / 'all.safetensors'}", "limit=100"]) == 0
    card = (tmp_path / "all.md").read_text()
    assert "on 3 unlabeled photos" in card and "a random" not in card
    assert adapt_main([*common, f"out={tmp_path / 'two.safetensors'}", "limit=2", "seed=4"]) == 0
    assert "on 2 unlabeled photos" in (tmp_path / "two.md").read_text()
    assert "a random 2 (seed 4)" in (tmp_path / "two.md").read_text()


def test_a_damaged_user_file_is_not_told_to_reinstall(tmp_path, capsys):
    write_image(tmp_path / "photos" / "p.png", 32, 32)
    bad = tmp_path / "mine.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    _refused([f"ckpt={bad}", f"photos={tmp_path / 'photos'}", f"out={tmp_path / 'o.safetensors'}"], capsys,
             str(bad), "written by dbd_lightning")
