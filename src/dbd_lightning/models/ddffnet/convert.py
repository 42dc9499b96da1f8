"""Convert the authors' released D-DFFNet weights to our module names.

    python -m dbd_lightning.convert ddffnet SRC.pth DST.ckpt [--encoder resnest101e] [--no-check]
    python -m dbd_lightning.convert dffnet  SRC.pth DST.ckpt
    python -m dbd_lightning.convert pdnet   SRC.pth DST.ckpt

``ddffnet`` / ``dffnet``: the authors' DFFNet (``PDnet_ResNest_4F_SL_LA``; the D-DFFNet
student has the same architecture). ``pdnet``: their ``PDnet`` (``aggregation_basic``).
The mapping was written from the module names in the authors' public code
(``resnest.*`` with ``layer3_1``/``layer4_1``, ``rfb{1..4}_1``, ``agg1.conv_upsample{1..7}``,
``agg1.conv_concat{2..4}``, ``agg1.conv4/conv5``, ``agg1.side{1..4}``,
``agg1.spatial_attention{1..4}.0``; every BasicConv2d is ``.conv`` + ``.bn``). It is
**unverified against a released checkpoint file** (none is available offline): the
tests check it on state dicts built with those names. Unused branches
(``layer3_2``/``layer4_2``, ``fc``) are dropped; a ``module.`` prefix (DataParallel) is
stripped. Loading is ``weights_only=True``. DST is ``{"state_dict": {"net.<key>": ...}}``,
loadable by ``test_ckpt=``/eval and by ``teacher.defocus.ckpt=``.
"""

from __future__ import annotations

import argparse
import re
import sys

import torch

from ..conversion.authors_state import load_authors_state
from ..conversion.output import refuse_foreign, save_converted

# RFB inside: authors' branch{b}.{i}.conv/bn, conv_cat, conv_res -> ours
_RFB_RULES = [
    (re.compile(r"^branch0\.0\.conv\."), "branches.0.0."),
    (re.compile(r"^branch0\.0\.bn\."), "branches.0.1."),
    (re.compile(r"^branch([123])\.(\d)\.conv\."), r"branches.\1.\2.0."),
    (re.compile(r"^branch([123])\.(\d)\.bn\."), r"branches.\1.\2.1."),
    (re.compile(r"^conv_cat\.conv\."), "fuse.0."),
    (re.compile(r"^conv_cat\.bn\."), "fuse.1."),
    (re.compile(r"^conv_res\.conv\."), "shortcut.0."),
    (re.compile(r"^conv_res\.bn\."), "shortcut.1."),
]


def _basic(rest: str, ours: str) -> str | None:
    """A BasicConv2d (``.conv`` + ``.bn``) -> our ConvBN (``.0`` + ``.1``)."""
    if rest.startswith("conv."):
        return f"{ours}.0.{rest[5:]}"
    if rest.startswith("bn."):
        return f"{ours}.1.{rest[3:]}"
    return None


def _encoder(key: str) -> str | None:
    k = key[len("resnest."):]
    if re.match(r"^(layer[34]_2|fc)\.", k):
        return None  # branches the authors build but never use
    k = re.sub(r"^layer([34])_1\.", r"layer\1.", k)
    return "encoder.body." + k


def _rfb(key: str) -> str | None:
    m = re.match(r"^rfb([1-4])_1\.(.*)$", key)
    if not m:
        return None
    level, rest = int(m[1]) - 1, m[2]
    for pattern, repl in _RFB_RULES:
        if pattern.match(rest):
            return f"rfbs.{level}." + pattern.sub(repl, rest, count=1)
    return None


def convert_dffnet_key(key: str) -> str | None:
    """One key of the authors' DFFNet -> ours (``None`` = dropped)."""
    if key.startswith("resnest."):
        return _encoder(key)
    if key.startswith("rfb"):
        return _rfb(key)
    if not key.startswith("agg1."):
        return None
    k = key[len("agg1."):]
    m = re.match(r"^conv_upsample([1-7])\.(.*)$", k)
    if m:
        return _basic(m[2], f"decoder.cu{m[1]}")
    m = re.match(r"^conv_concat([234])\.(.*)$", k)
    if m:
        return _basic(m[2], f"decoder.fuse{m[1]}")
    if k.startswith("conv4."):
        return _basic(k[len("conv4."):], "decoder.head.0")
    if k.startswith("conv5."):
        return "decoder.head.1." + k[len("conv5."):]
    m = re.match(r"^side([1-4])\.(.*)$", k)
    if m:
        return f"decoder.side_heads.{int(m[1]) - 1}.{m[2]}"
    m = re.match(r"^spatial_attention([1-4])\.0\.(.*)$", k)
    if m:
        return f"decoder.attention.{int(m[1]) - 1}.conv.{m[2]}"
    return None


_PDNET_REDUCE = {"conv11": 3, "conv22": 2, "conv33": 1, "conv44": 0}  # 2048, 1024, 512, 256 ch
_PDNET_BASIC = {"conv_upsample4": "up1", "conv_upsample5": "up2", "conv_upsample7": "up3",
                "conv_concat2": "fuse2", "conv_concat3": "fuse3", "conv_concat4": "fuse4", "conv4": "head.0"}


def convert_pdnet_key(key: str) -> str | None:
    """One key of the authors' PDnet (``aggregation_basic``) -> our PDNet (``None`` = dropped;
    their PDnet also builds four RFBs that ``aggregation_basic`` never uses)."""
    if key.startswith("resnest."):
        return _encoder(key)
    if not key.startswith("agg1."):
        return None
    k = key[len("agg1."):]
    name, _, rest = k.partition(".")
    if name in _PDNET_REDUCE:
        return f"reduce.{_PDNET_REDUCE[name]}.{rest}"
    if name in _PDNET_BASIC:
        return _basic(rest, _PDNET_BASIC[name])
    if name == "conv5":
        return f"head.1.{rest}"
    return None


CONVERTERS = {"ddffnet": convert_dffnet_key, "dffnet": convert_dffnet_key, "pdnet": convert_pdnet_key}


def convert_state(state: dict[str, torch.Tensor], kind: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(our state dict, dropped authors' keys)."""
    fn = CONVERTERS[kind]
    out, dropped = {}, []
    for key, value in state.items():
        new = fn(key)
        if new is None:
            dropped.append(key)
        else:
            out[new] = value
    return out, dropped


def build_net(kind: str, encoder: str):
    if kind == "pdnet":
        from ..pdnet import PDNet

        return PDNet(encoder)
    from ..dffnet import DFFNet

    return DFFNet(encoder)


def main(argv: list[str] | None = None, kind: str | None = None) -> int:
    """CLI of the D-DFFNet-family converter; ``kind`` given = it was chosen by the dispatcher."""
    parser = argparse.ArgumentParser(prog=f"python -m dbd_lightning.convert {kind or ''}".rstrip(),
                                     description=__doc__.splitlines()[0])
    if kind is None:
        parser.add_argument("kind", choices=sorted(CONVERTERS))
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--encoder", default="resnest101e", help="timm encoder of the target network")
    parser.add_argument("--no-check", action="store_true", help="skip the strict load into our network")
    args = parser.parse_args(argv)
    refuse_foreign(args.dst)  # before any work: never over a file the converters did not write
    if kind is not None:
        args.kind = kind
    state, dropped = convert_state(load_authors_state(args.src), args.kind)
    if not args.no_check:
        net = build_net(args.kind, args.encoder)
        own = net.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        shape = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
        if missing or unexpected or shape:
            print(f"conversion does not match our {args.kind} ({args.encoder}):\n  missing {missing[:8]}\n"
                  f"  unexpected {unexpected[:8]}\n  shape {shape[:8]}", file=sys.stderr)
            return 1
        net.load_state_dict(state, strict=True)
    save_converted({"state_dict": {f"net.{k}": v for k, v in state.items()}}, args.dst)
    print(f"wrote {args.dst}: {len(state)} tensors; dropped {len(dropped)} unused authors' keys")
    return 0
