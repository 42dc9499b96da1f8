"""BatchNorm statistics re-estimated on unlabeled photographs (AdaBN, Li et al. 2016): a label-free check.

    DBD_DATA_ROOT=<folder holding CUHK/> python experiments/label_free/adabn.py \
        --ckpt zoo:dffnet_lite0_synth --photos $DBD_DATA_ROOT/CUHK/image --out /tmp/adabn.safetensors
    python -m dbd_lightning.eval ckpt=[zoo:dffnet_lite0_synth,/tmp/adabn.safetensors] data=cuhk_tr1

Every BatchNorm layer's running mean and variance are reset and recomputed as the plain average over
the photographs (``momentum=None``), seen as the network sees them at test time (the eval transform:
resized to the run's input size, ImageNet-normalised); the weights are not touched and no mask is
read. With ``--exclude-cuhk-tr1-holdout 60`` (the default) the folder is read as CUHK's images and
the TR-1 hold-out and TE-1 are left out, as in self-training. The result is a released-style
``.safetensors`` file (the source's metadata, float32 weights) that ``eval``/``predict`` take.

The question it answers: how much of what self-training gains on real photographs is only the
normalisation statistics moving from synthetic to real images?
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", default="zoo:dffnet_lite0_synth")
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--exclude-cuhk-tr1-holdout", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--flip", action="store_true", help="also each photo mirrored")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from safetensors import safe_open
    from safetensors.torch import save_file

    from dbd_lightning.data.unlabeled import UnlabeledFolder
    from dbd_lightning.inference.image_predictor import run_input_defaults
    from dbd_lightning.runs.resolver import resolve_checkpoint
    from dbd_lightning.utils.checkpoint import load_weights
    from dbd_lightning.utils.config import instantiate_network

    run = resolve_checkpoint(args.ckpt)
    cfg = run.load_config()
    net = instantiate_network(cfg.model.net, pretrained=False, weights_file=None)
    load_weights(net, run.ckpt, prefix="net.")
    geometry = run_input_defaults(cfg, {})
    h, w = (int(s) for s in geometry["image_size"])
    mean = torch.tensor(geometry["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(geometry["std"]).view(1, 3, 1, 1) * 255

    photos = UnlabeledFolder(args.photos, args.exclude_cuhk_tr1_holdout)
    print(photos.describe())
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    net.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over every batch
        m.train()
    with torch.no_grad():
        for start in range(0, len(photos), args.batch):
            imgs = [cv2.resize(photos[i]["image"], (w, h), interpolation=cv2.INTER_LINEAR)
                    for i in range(start, min(start + args.batch, len(photos)))]
            x = (torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() - mean) / std
            net(x)
            if args.flip:
                net(x.flip(-1))
    with safe_open(str(run.ckpt), framework="pt") as f:
        metadata = dict(f.metadata() or {})
    key = next(k for k in metadata if k != "format")
    meta = json.loads(metadata[key])
    meta["adapted"] = (f"AdaBN: {len(norms)} BatchNorm layers' statistics recomputed on {len(photos)} photos of "
                       f"{args.photos}{' and their mirror images' if args.flip else ''} (no mask read)")
    meta["source_checkpoint"] = f"{args.ckpt} ({meta.get('source_checkpoint')})"
    metadata[key] = json.dumps(meta)
    state = {k: v.detach().float().contiguous() if v.is_floating_point() else v.contiguous()
             for k, v in net.state_dict().items()}
    save_file(state, str(args.out), metadata=metadata)
    print(f"wrote {args.out}: {meta['adapted']}")


if __name__ == "__main__":
    main()
