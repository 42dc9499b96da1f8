"""Blur radius (px) of real benchmark photos at the network input size (320 px), measured.

Runs Karaali et al.'s edge-based estimator (the authors' published B-NET / E-NET weights,
converted; GPL-3.0, read from a local folder, never stored here) on real CUHK / DUT test photos
resized to 320 x 320, and reports the sparse blur estimates at pattern edges, split by the
ground-truth mask (in focus vs blurred). Its output sets the photographic renderer's radius range.

    python experiments/real_photos/measure_blur_scale.py --weights DIR_WITH_blur_AND_edge \
        --data tests/fixtures/real_mini --out experiments/real_photos/blur_scale.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True, help="folder with blur/*.mat and edge/*.mat")
    ap.add_argument("--data", default="tests/fixtures/real_mini")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--out", default="experiments/real_photos/blur_scale.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from dbd_lightning.models.karaali.pipeline import KaraaliPipeline

    with tempfile.TemporaryDirectory() as tmp:
        w = Path(args.weights)
        subprocess.run([sys.executable, "-m", "dbd_lightning.convert", "karaali", "--blur", str(w / "blur"),
                        "--edge", str(w / "edge"), "--out", tmp], check=True, capture_output=True)
        pipe = KaraaliPipeline(bnet_ckpt=f"{tmp}/bnet.ckpt", enet_ckpt=f"{tmp}/enet.ckpt")
        rows, pooled = [], {"blurred": [], "in_focus": []}
        for subset in ("cuhk_te_sample", "dut_te_sample"):
            for img_path in sorted((Path(args.data) / subset / "image").iterdir()):
                gt_path = next((Path(args.data) / subset / "gt").glob(img_path.stem + ".*"))
                rgb = cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB)
                gt = cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE)
                rgb = cv2.resize(rgb, (args.size, args.size), interpolation=cv2.INTER_AREA)
                gt = cv2.resize(gt, (args.size, args.size), interpolation=cv2.INTER_NEAREST) > 127
                t0 = time.perf_counter()
                est = pipe.estimate(rgb)
                dt = time.perf_counter() - t0
                pat = est["pattern_edges"] > 0
                r = est["sparse"]
                row = {"image": f"{subset}/{img_path.name}", "seconds": round(dt, 2),
                       "dense_blurred_median": float(np.median(est["blur_radius"][~gt])) if (~gt).any() else None,
                       "dense_in_focus_median": float(np.median(est["blur_radius"][gt])) if gt.any() else None}
                for name, sel in (("blurred", pat & ~gt), ("in_focus", pat & gt)):
                    vals = r[sel]
                    pooled[name].append(vals)
                    row[f"{name}_edges"] = int(sel.sum())
                    row[f"{name}_p10_p50_p90"] = [float(np.percentile(vals, q)) for q in (10, 50, 90)] if vals.size else None
                rows.append(row)
                print(json.dumps(row))
    summary = {}
    for name, parts in pooled.items():
        v = np.concatenate(parts)
        summary[name] = {"n": int(v.size), "percentiles": {str(q): float(np.percentile(v, q)) for q in (5, 10, 25, 50, 75, 90, 95)}}
    res = {"size": args.size, "estimator": "Karaali et al. published weights, sparse estimates at pattern edges (B-NET levels 0.5..6 px)",
           "summary": summary, "per_image": rows}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
