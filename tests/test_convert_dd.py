"""DD converter: the authors' ``res_best.pth`` / ``vgg_best.pth`` names -> our DDNet.

The authors' state dicts are built here from their module names and shapes (their
public network code: ``ResNextDecoderAtt`` over the legacy ResNeXt-101 32x4d or
torchvision VGG16), written independently of the converter. No released file is
available offline, so this checks the mapping, not the file.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dbd_lightning.convert import main
from dbd_lightning.models.ddnet import DDNet
from dbd_lightning.models.ddnet.convert import convert_dd_key, convert_dd_state, fill_bn_counters


def _bn(prefix: str, c: int, counters: bool) -> dict[str, tuple]:
    out = {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")}
    if counters:
        out[f"{prefix}.num_batches_tracked"] = ()
    return out


def _decoder_shapes(ins: list[int], outs: list[int], counters: bool) -> dict[str, tuple]:
    s: dict[str, tuple] = {}
    for n, (ic, oc) in enumerate(zip(ins, outs, strict=True), start=1):
        m, p = ic // 4, f"deconv{n}"
        d = max(m // 16, 32)
        s |= {f"{p}.prev.weight": (m, ic, 3, 3), f"{p}.prev.bias": (m,), **_bn(f"{p}.bn", m, counters)}
        s |= {f"{p}.next.weight": (oc, m, 1, 1), f"{p}.next.bias": (oc,), **_bn(f"{p}.bn2", oc, counters)}
        for i, k in enumerate((3, 5, 7)):
            s |= {f"{p}.sk.convs.{i}.0.weight": (m, m, k, k), f"{p}.sk.convs.{i}.0.bias": (m,),
                  **_bn(f"{p}.sk.convs.{i}.1", m, counters)}
        s |= {f"{p}.sk.fc.weight": (d, m), f"{p}.sk.fc.bias": (d,)}
        for i in range(4):
            s |= {f"{p}.sk.fcs.{i}.weight": (m, d), f"{p}.sk.fcs.{i}.bias": (m,)}
        for j in (0, 1):
            s |= {f"classifier{n}.sides.{j}.weight": (1, oc, 1, 1), f"classifier{n}.sides.{j}.bias": (1,)}
    for n in range(1, 5):
        s |= {f"sideatt{n}.conv1.weight": (32, 2, 3, 3), f"sideatt{n}.conv1.bias": (32,),
              **_bn(f"sideatt{n}.bn", 32, counters),
              f"sideatt{n}.conv2.weight": (1, 32, 3, 3), f"sideatt{n}.conv2.bias": (1,)}
    for f in ("fusion", "fusiond"):
        s |= {f"{f}.weight": (1, 5, 1, 1), f"{f}.bias": (1,)}
    return s


def authors_resnext_shapes(counters: bool = True) -> dict[str, tuple]:
    """``resskspp()``: legacy ResNeXt-101 32x4d as layer0 (conv, bn), layer1 (max-pool, stage 1), layer2..4."""
    s = {"pretrained_net.layer0.0.weight": (64, 3, 7, 7), **_bn("pretrained_net.layer0.1", 64, counters)}
    cin = 64
    for layer, (blocks, width, cout) in enumerate([(3, 128, 256), (4, 256, 512), (23, 512, 1024), (3, 1024, 2048)], 1):
        root = "pretrained_net.layer1.1" if layer == 1 else f"pretrained_net.layer{layer}"
        for j in range(blocks):
            p, i = f"{root}.{j}", (cin if j == 0 else cout)
            s |= {f"{p}.0.0.0.0.weight": (width, i, 1, 1), **_bn(f"{p}.0.0.0.1", width, counters),
                  f"{p}.0.0.0.3.weight": (width, width // 32, 3, 3), **_bn(f"{p}.0.0.0.4", width, counters),
                  f"{p}.0.0.1.weight": (cout, width, 1, 1), **_bn(f"{p}.0.0.2", cout, counters)}
            if j == 0:
                s |= {f"{p}.0.1.0.weight": (cout, i, 1, 1), **_bn(f"{p}.0.1.1", cout, counters)}
        cin = cout
    return s | _decoder_shapes([2048, 1024, 512, 256, 64], [1024, 512, 256, 64, 32], counters)


def authors_vgg_shapes() -> dict[str, tuple]:
    """``vggskspp()``: torchvision VGG16 ``features`` (classifier deleted) + the same decoder."""
    s, cin = {}, 3
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    for idx, c in zip(convs, widths, strict=True):
        s |= {f"pretrained_net.features.{idx}.weight": (c, cin, 3, 3), f"pretrained_net.features.{idx}.bias": (c,)}
        cin = c
    return s | _decoder_shapes([512, 512, 256, 128, 64], [512, 256, 128, 64, 32], counters=True)


def _random_state(shapes: dict[str, tuple], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randint(0, 100, (), generator=g) if k.endswith("num_batches_tracked")
                else torch.randn(shape, generator=g)) for k, shape in shapes.items()}


@pytest.fixture(scope="module")
def resnext_net():
    return DDNet("resnext101_32x4d")


def test_the_dispatcher_hands_dd_files_to_the_dd_converter(tmp_path, capsys):
    """``python -m dbd_lightning.convert dd SRC DST``: a DataParallel file with a few of the authors' DD keys
    comes out under our DDNet names (hand-mapped below), tensors unchanged; the fc head is dropped."""
    g = torch.Generator().manual_seed(1)
    authors = {"deconv1.prev.weight": torch.randn(4, 8, 3, 3, generator=g),
               "sideatt2.bn.running_mean": torch.randn(32, generator=g),
               "fusiond.bias": torch.randn(1, generator=g),
               "pretrained_net.fc.weight": torch.randn(2, 2, generator=g)}
    src, dst = tmp_path / "res_best.pth", tmp_path / "out" / "dd.ckpt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in authors.items()}}, src)
    assert main(["dd", str(src), str(dst), "--no-check"]) == 0
    state = torch.load(dst, weights_only=True)["state_dict"]
    assert sorted(state) == ["net.attention.1.post.1.running_mean", "net.fuse_depth.bias", "net.stages.0.conv_in.weight"]
    assert torch.equal(state["net.stages.0.conv_in.weight"], authors["deconv1.prev.weight"])
    assert torch.equal(state["net.attention.1.post.1.running_mean"], authors["sideatt2.bn.running_mean"])
    assert torch.equal(state["net.fuse_depth.bias"], authors["fusiond.bias"])
    assert "dropped 1 authors' keys" in capsys.readouterr().out


def test_the_dispatcher_rejects_an_unknown_family_and_lists_the_known_ones(capsys):
    assert main(["ddd"]) == 2
    err = capsys.readouterr().err
    assert "unknown family 'ddd'" in err and "{dd,ddffnet,dffnet,karaali,pdnet}" in err


def test_every_authors_resnext_key_maps_onto_our_net(resnext_net):
    shapes = authors_resnext_shapes()
    own = resnext_net.state_dict()
    mapped = {k: convert_dd_key(k) for k in shapes}
    assert not [k for k, v in mapped.items() if v is None]
    assert sorted(mapped.values()) == sorted(own)  # one to one, nothing left over
    bad = [(k, v) for k, v in mapped.items() if tuple(own[v].shape) != tuple(shapes[k])]
    assert not bad, bad[:5]


def test_spot_checks_of_the_mapping():
    pairs = {
        "pretrained_net.layer0.0.weight": "encoder.body.conv1.weight",
        "pretrained_net.layer1.1.2.0.0.0.3.weight": "encoder.body.layer1.2.conv2.weight",
        "pretrained_net.layer3.22.0.0.2.running_var": "encoder.body.layer3.22.bn3.running_var",
        "pretrained_net.layer4.0.0.1.1.bias": "encoder.body.layer4.0.downsample.1.bias",
        "deconv1.prev.weight": "stages.0.conv_in.weight",
        "deconv2.bn.running_mean": "stages.1.post_in.1.running_mean",
        "deconv5.bn2.weight": "stages.4.post_out.1.weight",
        "deconv3.sk.convs.2.1.weight": "stages.2.sk.convs.2.1.weight",
        "deconv4.sk.fc.bias": "stages.3.sk.squeeze.bias",
        "deconv1.sk.fcs.3.weight": "stages.0.sk.excite.3.weight",
        "classifier5.sides.0.bias": "side_heads.4.bias",
        "classifier2.sides.1.weight": "depth_heads.1.weight",
        "sideatt4.bn.running_var": "attention.3.post.1.running_var",
        "fusiond.weight": "fuse_depth.weight",
        "pretrained_net.features.28.bias": "encoder.body.features_28.bias",
    }
    for theirs, ours in pairs.items():
        assert convert_dd_key(theirs) == ours, theirs
    for unknown in ("pretrained_net.fc.weight", "deconv6.prev.weight", "sideatt5.conv1.weight", "criterion.x"):
        assert convert_dd_key(unknown) is None


def test_conversion_without_bn_counters_loads_strictly(resnext_net):
    authors = _random_state(authors_resnext_shapes(counters=False))
    state, dropped = convert_dd_state(authors)
    assert not dropped
    added = fill_bn_counters(state, resnext_net.state_dict())
    assert len(added) == sum(isinstance(m, nn.BatchNorm2d) for m in resnext_net.modules())
    resnext_net.load_state_dict(state, strict=True)
    own = resnext_net.state_dict()
    assert torch.equal(own["encoder.body.layer2.3.conv2.weight"], authors["pretrained_net.layer2.3.0.0.0.3.weight"])
    assert torch.equal(own["stages.2.sk.excite.1.bias"], authors["deconv3.sk.fcs.1.bias"])
    assert torch.equal(own["fuse.weight"], authors["fusion.weight"])


@pytest.mark.slow
def test_cli_converts_a_dataparallel_resnext_file(tmp_path):
    authors = _random_state(authors_resnext_shapes(counters=False))
    src, dst = tmp_path / "res_best.pth", tmp_path / "dd.ckpt"
    torch.save({f"module.{k}": v for k, v in authors.items()}, src)
    assert main(["dd", str(src), str(dst)]) == 0
    state = torch.load(dst, weights_only=True)["state_dict"]
    net = DDNet("resnext101_32x4d")
    net.load_state_dict({k[len("net."):]: v for k, v in state.items()}, strict=True)
    assert torch.equal(net.state_dict()["stages.0.conv_in.weight"], authors["deconv1.prev.weight"])
    assert int(net.state_dict()["encoder.body.bn1.num_batches_tracked"]) == 0  # filled


@pytest.mark.slow
def test_cli_vgg16_file(tmp_path):
    authors = _random_state(authors_vgg_shapes())
    src, dst = tmp_path / "vgg_best.pth", tmp_path / "dd_vgg.ckpt"
    torch.save(authors, src)
    assert main(["dd", str(src), str(dst)]) == 0  # encoder detected from the keys
    state = torch.load(dst, weights_only=True)["state_dict"]
    net = DDNet("vgg16", pool_taps=True)
    net.load_state_dict({k[len("net."):]: v for k, v in state.items()}, strict=True)
    assert torch.equal(net.encoder.body.features_5.weight, authors["pretrained_net.features.5.weight"])


def test_vgg16_keys_map_and_a_mismatch_is_reported(tmp_path, capsys):
    shapes = authors_vgg_shapes()
    own = DDNet("vgg16", pool_taps=True).state_dict()
    mapped = {convert_dd_key(k): v for k, v in shapes.items()}
    assert sorted(mapped) == sorted(own) and all(tuple(own[k].shape) == v for k, v in mapped.items())
    authors = {k: torch.zeros(v) for k, v in shapes.items() if not k.startswith("pretrained_net.")}
    del authors["deconv2.next.bias"]
    src = tmp_path / "partial.pth"
    torch.save(authors, src)
    assert main(["dd", str(src), str(tmp_path / "x.ckpt"), "--encoder", "vgg16"]) == 1
    err = capsys.readouterr().err
    assert "missing" in err and "(27)" in err and "encoder.body.features_0.weight" in err  # 26 encoder + 1
    assert not (tmp_path / "x.ckpt").exists()


class _LegacyBlock(nn.Module):
    """A ResNeXt bottleneck with the legacy key layout (``0.0.0.{0,1,3,4}``, ``0.0.{1,2}``, ``0.1.{0,1}``)."""

    def __init__(self, cin: int, width: int, cout: int, stride: int) -> None:
        super().__init__()
        inner = nn.Sequential(nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                              nn.Conv2d(width, width, 3, stride, 1, groups=32, bias=False),
                              nn.BatchNorm2d(width), nn.ReLU())
        main_path = nn.Sequential(inner, nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.add_module("0", nn.ModuleList([main_path, shortcut]))

    def forward(self, x):
        branches = getattr(self, "0")
        return torch.relu(branches[0](x) + branches[1](x))


def test_legacy_block_equals_timm_block_after_conversion(resnext_net):
    torch.manual_seed(0)
    legacy = _LegacyBlock(256, 256, 512, stride=2)
    for m in legacy.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    legacy.eval()
    theirs = {f"pretrained_net.layer2.0.{k}": v for k, v in legacy.state_dict().items()}
    ours, dropped = convert_dd_state(theirs)
    assert not dropped
    block = resnext_net.encoder.body.layer2[0]
    prefix = "encoder.body.layer2.0."
    block.load_state_dict({k[len(prefix):]: v for k, v in ours.items()}, strict=True)
    block.eval()
    x = torch.randn(1, 256, 16, 16)
    with torch.no_grad():
        assert torch.allclose(block(x), legacy(x), atol=1e-5)


def test_fill_bn_counters_only_adds_missing():
    state = {"a.num_batches_tracked": torch.tensor(5)}
    added = fill_bn_counters(state, {"a.num_batches_tracked": torch.tensor(0), "b.num_batches_tracked": torch.tensor(0),
                                     "b.weight": torch.ones(1)})
    assert added == ["b.num_batches_tracked"] and int(state["a.num_batches_tracked"]) == 5
