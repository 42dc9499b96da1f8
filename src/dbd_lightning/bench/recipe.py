"""The real-data CPU recipe's throughput: training steps per second and whether the loader keeps up.

``experiment=dffnet_lite_cuhk`` trains DFFNet-Lite0 on CUHK TR-1 photographs (640 px JPEGs, decoded,
resized to 320, flipped and jittered for every sample) in batches of 8. One DataLoader worker prepares
the next batch while the step runs, so the loader never starves the step when preparing a batch takes
less time than a step: ``load_over_step`` < 1 (it is measured here single-threaded, in the worst case).

The photographs are CUHK TR-1 under ``root`` (default ``$DBD_DATA_ROOT``) when on disk, else JPEGs written at CUHK's size
(640 x 427) into a temporary folder, so the case runs anywhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..utils.timer import measure


def _write_stand_ins(folder: Path, n: int, seed: int = 0) -> Path:
    """``n`` textured 640 x 427 JPEGs with half-blurred masks (CUHK's size and file type)."""
    import cv2

    rng = np.random.default_rng(seed)
    (folder / "image").mkdir(parents=True)
    (folder / "gt").mkdir()
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 256, (427, 640, 3), dtype=np.uint8), (0, 0), 1.0)
        mask = np.zeros((427, 640), np.uint8)
        mask[:, 320:] = 255
        cv2.imwrite(str(folder / "image" / f"{i:04d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(folder / "gt" / f"{i:04d}.png"), mask)
    return folder


def bench_real_recipe(size: int = 320, batch: int = 8, repeats: int = 3, images: int = 16,
                      root: str | None = None) -> dict:
    """Step time of the recipe's network + loss + Adam, and the time to prepare one batch of photographs."""
    from ..data.benchmarks import CUHK
    from ..data.folder import ImageMaskFolder
    from ..data.samples import TransformedDataset, collate_samples
    from ..data.transforms import build_train_transform
    from ..losses.detection import DeepSupervisionLoss
    from ..losses.dof_edge import DOFEdgeDiceLoss
    from ..models.dffnet import DFFNet

    root = root or os.environ.get("DBD_DATA_ROOT")
    with tempfile.TemporaryDirectory() as tmp:
        source = "stand-in JPEGs 640x427"
        raw = None
        if root and (Path(root) / "CUHK").is_dir():
            cuhk = CUHK(Path(root) / "CUHK", split="tr1_train")
            if len(cuhk):
                raw, source = cuhk, f"CUHK tr1_train at {root}"
        if raw is None:
            raw = ImageMaskFolder(_write_stand_ins(Path(tmp) / "set", images), polarity="white_blurred")
        data = TransformedDataset(raw, build_train_transform(size=(size, size), flip="horizontal"))
        order = np.random.default_rng(0).permutation(len(data))
        cursor = iter(range(10**9))

        def load_batch():
            start = next(cursor) * batch
            return collate_samples([data[int(order[(start + k) % len(order)])] for k in range(batch)])

        net = DFFNet("efficientnet_lite0").train()
        loss_fn = DeepSupervisionLoss(DOFEdgeDiceLoss(), edge_weight=0.5)
        opt = torch.optim.Adam(net.parameters(), lr=2e-4)
        ready = load_batch()

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(net(ready["image"]), ready)["loss"].backward()
            opt.step()

        t_load = measure(load_batch, max(repeats, 3), warmup=1)
        t_step = measure(step, repeats, warmup=1)
    return {
        "recipe": "experiment=dffnet_lite_cuhk", "photos": source, "size": size, "batch": batch,
        "ms_per_step": t_step.median * 1e3, "steps_per_s": 1 / t_step.median, "images_per_s": batch / t_step.median,
        "load_ms_per_batch": t_load.median * 1e3, "load_over_step": t_load.median / t_step.median,
        "loader_keeps_up": bool(t_load.median < t_step.median),
    }
