"""Import the published Karaali et al. weights (``.mat`` files) into our B-NET / E-NET checkpoints.

    python -m dbd_lightning.convert karaali --blur models_tf1x/blur --edge models_tf1x/edge --out DIR

Layout of the release (one array under key ``weights`` per file; conv kernels HWIO,
FC ``(in, out)``, biases ``(1, out)``):

* ``blur/0..21.mat`` (B-NET): 0-3 stream41, 4-7 stream27, 8-11 stream15,
  12-15 trunk (12: 3x3x192x64, 15: 1x1), 16/17, 18/19, 20/21 = FC 64x300, 300x150, 150x23 + biases;
* ``edge/0..25.mat`` (E-NET): 0-3 the first 41-stream (f1), 4-7 the second (f2),
  8-11 stream27, 12-15 stream15, 16-19 trunk (16: 3x3x256x64), 20-25 FC 64x300, 300x150, 150x2 + biases.
  E-NET concatenates ``[second41, first41, 27, 15]`` = our ``[f2, f1.s41, f1.s27, f1.s15]``.

Kernels become OIHW, FC matrices are transposed; TF and torch convolutions are both
cross-correlations, so nothing is flipped. Only plain arrays are read (``scipy.io.loadmat``);
output files are ``{"state_dict": {"net.<key>": tensor}}`` (``weights_only`` loadable), used by
``model=karaali model.bnet_ckpt=DIR/bnet.ckpt model.enet_ckpt=DIR/enet.ckpt``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ..conversion.output import refuse_foreign, save_converted
from .torch_model import BNet, ENet

_STREAM4 = ["convs.0.weight", "convs.1.weight", "convs.2.weight", "convs.3.weight"]
_FC = ["fcs.0.weight", "fcs.0.bias", "fcs.1.weight", "fcs.1.bias", "fcs.2.weight", "fcs.2.bias"]

#: file index -> our parameter name
BNET_KEYS: list[str] = (
    [f"streams.s41.{k}" for k in _STREAM4] + [f"streams.s27.{k}" for k in _STREAM4]
    + [f"streams.s15.{k}" for k in _STREAM4] + [f"trunk.convs.{k}" for k in _STREAM4] + [f"trunk.{k}" for k in _FC]
)
ENET_KEYS: list[str] = (
    [f"f1.s41.{k}" for k in _STREAM4] + [f"f2.{k}" for k in _STREAM4] + [f"f1.s27.{k}" for k in _STREAM4]
    + [f"f1.s15.{k}" for k in _STREAM4] + [f"trunk.convs.{k}" for k in _STREAM4] + [f"trunk.{k}" for k in _FC]
)
WEIGHTS_KEY = "weights"


def _read(path: Path) -> np.ndarray:
    from scipy.io import loadmat

    if not path.is_file():
        raise FileNotFoundError(f"missing weight file {path}")
    try:
        data = loadmat(path)
    except (NotImplementedError, OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable MATLAB v5/v7 .mat file ({exc})") from exc
    if WEIGHTS_KEY not in data:
        raise KeyError(f"{path}: no variable {WEIGHTS_KEY!r} (it holds {sorted(k for k in data if not k.startswith('__'))})")
    return np.asarray(data[WEIGHTS_KEY], dtype=np.float32)


def to_torch(arr: np.ndarray, target: torch.Tensor, where: str) -> torch.Tensor:
    """One published array -> our tensor layout (HWIO -> OIHW, (in,out) -> (out,in), (1,out) -> (out,))."""
    if target.dim() == 4:
        out = arr.transpose(3, 2, 0, 1)
    elif target.dim() == 2:
        out = arr.T
    else:
        out = arr.reshape(-1)
    if tuple(out.shape) != tuple(target.shape):
        raise ValueError(f"{where}: shape {arr.shape} does not fit {tuple(target.shape)} (ours, after transposing)")
    return torch.from_numpy(np.ascontiguousarray(out))


def convert_folder(folder: str | Path, kind: str) -> dict[str, torch.Tensor]:
    """State dict of ``BNet`` (``kind='blur'``) or ``ENet`` (``'edge'``) from a folder of ``N.mat`` files."""
    folder = Path(folder)
    net, keys = (BNet(), BNET_KEYS) if kind == "blur" else (ENet(), ENET_KEYS)
    own = net.state_dict()
    if sorted(keys) != sorted(own):
        raise RuntimeError(f"internal: key table and {type(net).__name__} disagree")
    state = {key: to_torch(_read(folder / f"{i}.mat"), own[key], f"{folder / f'{i}.mat'} -> {key}")
             for i, key in enumerate(keys)}
    extra = sorted(p.name for p in folder.glob("*.mat") if p.stem.isdigit() and int(p.stem) >= len(keys))
    if extra:
        raise ValueError(f"{folder}: unexpected extra weight files {extra} (expected 0..{len(keys) - 1}.mat)")
    net.load_state_dict(state)  # strict: every parameter present with the right shape
    return state


def save(state: dict[str, torch.Tensor], path: Path, source: Path) -> None:
    save_converted({"state_dict": {f"net.{k}": v for k, v in state.items()}, "source": str(source)}, path)


def main(argv: list[str] | None = None, kind: str = "karaali") -> int:
    ap = argparse.ArgumentParser(prog=f"python -m dbd_lightning.convert {kind}", description=__doc__.splitlines()[0])
    ap.add_argument("--blur", type=Path, help="folder with the B-NET files 0..21.mat (models_tf1x/blur)")
    ap.add_argument("--edge", type=Path, help="folder with the E-NET files 0..25.mat (models_tf1x/edge)")
    ap.add_argument("--out", type=Path, default=Path("checkpoints/karaali"), help="writes bnet.ckpt / enet.ckpt here")
    args = ap.parse_args(argv)
    if args.blur is None and args.edge is None:
        ap.error("give --blur and/or --edge")
    for given, name in ((args.blur, "bnet.ckpt"), (args.edge, "enet.ckpt")):
        if given is not None:
            refuse_foreign(args.out / name)  # before any work: never over a file the converters did not write
    bnet_state = None
    if args.blur is not None:
        bnet_state = convert_folder(args.blur, "blur")
        save(bnet_state, args.out / "bnet.ckpt", args.blur)
        print(f"B-NET: {len(bnet_state)} tensors -> {args.out / 'bnet.ckpt'}")
    if args.edge is not None:
        enet_state = convert_folder(args.edge, "edge")
        save(enet_state, args.out / "enet.ckpt", args.edge)
        print(f"E-NET: {len(enet_state)} tensors -> {args.out / 'enet.ckpt'}")
        if bnet_state is not None:
            same = all(torch.equal(enet_state[f"f1.{k[len('streams.'):]}"], v)
                       for k, v in bnet_state.items() if k.startswith("streams."))
            print(f"E-NET f1-NET {'equals' if same else 'differs from'} the B-NET streams"
                  + ("" if same else " (the pipeline then runs both sets of streams)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
