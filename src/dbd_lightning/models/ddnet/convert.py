"""Convert the authors' released DD weights (``res_best.pth`` / ``vgg_best.pth``) to our DDNet names.

    python -m dbd_lightning.convert dd SRC.pth DST.ckpt [--encoder resnext101_32x4d|vgg16] [--no-check]

The mapping was written from the module names of the authors' public network code
(``resskspp`` / ``vggskspp`` = ``ResNextDecoderAtt``): ``pretrained_net.*`` (ResNeXt-101
32x4d as ``layer0`` = stem conv/bn, ``layer1`` = max-pool + stage 1, ``layer2..4``, with
the legacy Torch7-converted block layout ``<j>.0.0.0.{0,1,3,4}`` / ``<j>.0.0.{1,2}`` /
``<j>.0.1.{0,1}``; or torchvision VGG16 ``features.<i>``), ``deconv{1..5}.{prev,bn,sk,next,bn2}``
(``sk.convs.<i>.{0,1}``, ``sk.fc``, ``sk.fcs.<i>``), ``classifier{1..5}.sides.{0,1}`` (defocus,
depth), ``sideatt{1..4}.{conv1,bn,conv2}``, ``fusion``, ``fusiond``. It is **unverified against
the released file** (not available offline): the tests check it on state dicts built from those
names and our shapes. Their decoder is the code's form: ``model.net.selective_form=cascaded``,
``order=conv_relu_bn`` (our defaults). A ``module.`` prefix is stripped; BatchNorm
``num_batches_tracked`` counters missing from old files are filled with 0. Loading is
``weights_only=True``; DST is ``{"state_dict": {"net.<key>": ...}}`` (``test_ckpt=`` / eval).
Inputs as the authors': 320x320, ImageNet mean/std.
"""

from __future__ import annotations

import argparse
import re
import sys

import torch

from ..conversion.authors_state import load_authors_state
from ..conversion.output import refuse_foreign, save_converted

# legacy ResNeXt block (Sequential(LambdaMap(id, main, shortcut), LambdaReduce(add), ReLU))
_BLOCK = [
    ("0.0.0.0.", "conv1."), ("0.0.0.1.", "bn1."), ("0.0.0.3.", "conv2."), ("0.0.0.4.", "bn2."),
    ("0.0.1.", "conv3."), ("0.0.2.", "bn3."), ("0.1.0.", "downsample.0."), ("0.1.1.", "downsample.1."),
]
_STAGE = {"prev.": "conv_in.", "bn.": "post_in.1.", "next.": "conv_out.", "bn2.": "post_out.1.",
          "sk.fc.": "sk.squeeze."}
_SAB = {"conv1.": "conv1.", "bn.": "post.1.", "conv2.": "conv2."}


def _encoder(k: str) -> str | None:
    if k.startswith("layer0.0."):
        return "conv1." + k[len("layer0.0."):]
    if k.startswith("layer0.1."):
        return "bn1." + k[len("layer0.1."):]
    m = re.match(r"^layer1\.1\.(\d+)\.(.*)$", k) or re.match(r"^layer([234])\.(\d+)\.(.*)$", k)
    if m:
        layer, block, rest = ("1", m[1], m[2]) if k.startswith("layer1.") else (m[1], m[2], m[3])
        for old, new in _BLOCK:
            if rest.startswith(old):
                return f"layer{layer}.{block}.{new}{rest[len(old):]}"
        return None
    m = re.match(r"^features\.(\d+)\.(weight|bias)$", k)  # VGG16
    if m:
        return f"features_{m[1]}.{m[2]}"
    return None


def convert_dd_key(key: str) -> str | None:
    """One key of the authors' DD network -> ours (``None`` = not a DD weight)."""
    if key.startswith("pretrained_net."):
        new = _encoder(key[len("pretrained_net."):])
        return None if new is None else "encoder.body." + new
    m = re.match(r"^deconv([1-5])\.(.*)$", key)
    if m:
        stage, rest = int(m[1]) - 1, m[2]
        m2 = re.match(r"^sk\.fcs\.(\d+)\.(.*)$", rest)
        if m2:
            return f"stages.{stage}.sk.excite.{m2[1]}.{m2[2]}"
        if re.match(r"^sk\.convs\.\d+\.[01]\.", rest):
            return f"stages.{stage}.{rest}"
        for old, new in _STAGE.items():
            if rest.startswith(old):
                return f"stages.{stage}.{new}{rest[len(old):]}"
        return None
    m = re.match(r"^classifier([1-5])\.sides\.([01])\.(.*)$", key)
    if m:
        heads = "side_heads" if m[2] == "0" else "depth_heads"
        return f"{heads}.{int(m[1]) - 1}.{m[3]}"
    m = re.match(r"^sideatt([1-4])\.(.*)$", key)
    if m:
        for old, new in _SAB.items():
            if m[2].startswith(old):
                return f"attention.{int(m[1]) - 1}.{new}{m[2][len(old):]}"
        return None
    for old, new in (("fusion.", "fuse."), ("fusiond.", "fuse_depth.")):
        if key.startswith(old):
            return new + key[len(old):]
    return None


def convert_dd_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(our state dict, authors' keys that map to nothing)."""
    out, dropped = {}, []
    for key, value in state.items():
        new = convert_dd_key(key)
        if new is None:
            dropped.append(key)
        else:
            out[new] = value
    return out, dropped


def fill_bn_counters(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> list[str]:
    """Add ``num_batches_tracked = 0`` where ``reference`` has one and ``state`` lacks it (old files)."""
    added = [k for k in reference if k.endswith("num_batches_tracked") and k not in state]
    for k in added:
        state[k] = torch.zeros((), dtype=torch.long)
    return added


def detect_encoder(state: dict[str, torch.Tensor]) -> str:
    return "vgg16" if any(k.startswith("pretrained_net.features.") for k in state) else "resnext101_32x4d"


def build_net(encoder: str):
    from .torch_model import DDNet

    return DDNet(encoder, pool_taps=encoder.startswith("vgg"))


def check_against(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """``None`` when ``state`` fits ``net`` exactly, else a description of the mismatch."""
    own = net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shape:
        return (f"missing {missing[:8]} ({len(missing)})\n  unexpected {unexpected[:8]} ({len(unexpected)})\n"
                f"  shape {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in shape[:8]]} ({len(shape)})")
    return None


def main(argv: list[str] | None = None, kind: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dbd_lightning.convert dd", description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--encoder", default=None, help="resnext101_32x4d | vgg16 (default: from the keys)")
    parser.add_argument("--no-check", action="store_true", help="skip the strict load into our network")
    args = parser.parse_args(argv)
    refuse_foreign(args.dst)  # before any work: never over a file the converters did not write
    authors = load_authors_state(args.src)
    state, dropped = convert_dd_state(authors)
    encoder = args.encoder or detect_encoder(authors)
    if not args.no_check:
        net = build_net(encoder)
        fill_bn_counters(state, net.state_dict())
        problem = check_against(net, state)
        if problem:
            print(f"conversion does not match our DDNet ({encoder}):\n  {problem}", file=sys.stderr)
            return 1
        net.load_state_dict(state, strict=True)
    save_converted({"state_dict": {f"net.{k}": v for k, v in state.items()}}, args.dst)
    print(f"wrote {args.dst}: {len(state)} tensors (encoder {encoder}); dropped {len(dropped)} authors' keys"
          + (f": {dropped[:5]}" if dropped else ""))
    return 0
