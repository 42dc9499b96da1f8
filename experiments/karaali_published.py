"""Karaali et al. with the authors' published weights on Lytro samples: blur MAE and time per image.

    python experiments/karaali_published.py --weights KARAALI_WEIGHTS --lytro LYTRO_DIR --edges EDGES_DIR \
        --out experiments/karaali_published.json

``KARAALI_WEIGHTS`` holds the authors' ``blur/0..21.mat`` and ``edge/0..25.mat`` (their
``models_tf1x``; GPL-3.0, not part of this project), ``LYTRO_DIR`` Lytro images with their
``map_*.mat`` GT, ``EDGES_DIR`` the authors' precomputed edge maps (``edge_<id>.png``). The
weights are converted (``convert karaali``) into a temporary folder; each variant runs the
pipeline on every image, once to warm up and then ``--repeats`` timed runs (wall and process
CPU time of :meth:`KaraaliPipeline.estimate`, ``--threads`` torch threads).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dbd_lightning.convert import main as convert_main
from dbd_lightning.models.karaali import KaraaliPipeline
from dbd_lightning.models.karaali.evaluate import lytro_scenes, read_edges

AUTHORS_CODE = dict(psi=20.0, border="symmetric", penalty_placement="next", dt_precision="float64")
VARIANTS = {  # name: (pipeline switches, use the precomputed edge maps)
    "authors_code+edges": (AUTHORS_CODE, True),
    "paper+edges": ({}, True),
    "paper (hue Canny)": ({}, False),
    "authors_code (hue Canny)": (AUTHORS_CODE, False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--lytro", type=Path, required=True)
    ap.add_argument("--edges", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scenes = lytro_scenes(args.lytro)
    result: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                               f"{args.threads} torch threads",
                    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                             text=True).stdout.strip(),
                    "paper_mae_22_images": 0.169, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        convert_main(["karaali", "--blur", str(args.weights / "blur"), "--edge", str(args.weights / "edge"),
                      "--out", tmp])
        for name in args.variants:
            switches, use_edges = VARIANTS[name]
            pipe = KaraaliPipeline(bnet_ckpt=f"{tmp}/bnet.ckpt", enet_ckpt=f"{tmp}/enet.ckpt", device="cpu",
                                   **switches)
            rows = []
            for scene, image, gt in scenes:
                edges = read_edges(args.edges, scene) if use_edges else None
                out = pipe.estimate(image, edges)  # warm-up run, also the measured output
                walls, cpus, loads = [], [], []
                for _ in range(args.repeats):
                    loads.append(os.getloadavg()[0])
                    t, c = time.perf_counter(), time.process_time()
                    pipe.estimate(image, edges)
                    walls.append(time.perf_counter() - t)
                    cpus.append(time.process_time() - c)
                blur = out["blur_radius"]
                rows.append({"name": scene, "mae": float(np.abs(blur - gt).mean()),
                             "edge_px": int(out["pattern_edges"].sum() + out["depth_edges"].sum()),
                             "depth_edge_px": int(out["depth_edges"].sum()),
                             "wall_s": walls, "cpu_s": cpus, "load1": loads})
            maes = [r["mae"] for r in rows]
            result["variants"][name] = {"switches": switches, "edges": "precomputed" if use_edges else "hue Canny",
                                        "mae_mean": float(np.mean(maes)), "mae_std": float(np.std(maes)),
                                        "per_image": rows}
            per = ", ".join(f"{r['name']} {r['mae']:.4f}" for r in rows)
            print(f"{name}: MAE {np.mean(maes):.4f} ± {np.std(maes):.4f} ({per}); wall s "
                  f"{[round(min(r['wall_s']), 2) for r in rows]}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
