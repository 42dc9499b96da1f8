"""Test-time fusion (``infer.flip`` / ``infer.fusion_scales``) on the CUHK TR-1 hold-out: scores and cost.

    DBD_DATA_ROOT=<folder holding CUHK/> python experiments/label_free/fusion.py \
        --ckpt zoo:dffnet_lite0_synth zoo:dffnet_lite0_cuhk --work <scratch folder> \
        --out experiments/label_free/fusion.json

For each fusion setting, ``python -m dbd_lightning.eval data=cuhk_tr1`` scores every checkpoint on the 60
held-out TR-1 photographs (the papers' protocol: whole image resized to the network input); the cost is
the median wall time of one 640 x 480 photo through :func:`dbd_lightning.load_predictor` on the CPU
(the settings interleaved, 2 warm-up rounds, then ``--repeats``), as a ratio to no fusion in the same process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SETTINGS = {  # name -> (flip, fusion_scales)
    "none": (False, [1.0]),
    "flip": (True, [1.0]),
    "scales 0.75,1,1.25": (False, [0.75, 1.0, 1.25]),
    "flip + scales 0.75,1,1.25": (True, [0.75, 1.0, 1.25]),
}
SPLIT = "cuhk_tr1_val"


def _infer_args(flip: bool, scales: list[float]) -> list[str]:
    return [f"infer.flip={str(flip).lower()}", "infer.fusion_scales=[" + ",".join(f"{s:g}" for s in scales) + "]"]


def scores(ckpts: list[str], work: Path) -> dict:
    out: dict = {}
    for name, (flip, scales) in SETTINGS.items():
        folder = work / name.replace(" ", "_").replace(",", "-").replace("+", "and")
        if not (folder / "results.json").is_file():
            subprocess.run([sys.executable, "-m", "dbd_lightning.eval", "ckpt=[" + ",".join(ckpts) + "]",
                            "data=cuhk_tr1", "device=cpu", "report.pr_curves=false", "report.grid_samples=0",
                            *_infer_args(flip, scales), f"hydra.run.dir={folder}"], check=True)
        results = json.loads((folder / "results.json").read_text())["results"]
        for row, datasets in results.items():
            out.setdefault(row, {})[name] = {k: round(float(v), 4) for k, v in datasets[SPLIT].items()
                                             if k in ("mae", "fbeta", "iou")}
    return out


def cost(ckpt: str, repeats: int) -> dict:
    import numpy as np

    from dbd_lightning import load_predictor
    from dbd_lightning.utils.timer import measure, summarize

    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3)).astype(np.uint8)
    calls = {}
    for name, (flip, scales) in SETTINGS.items():
        predict = load_predictor(ckpt, device="cpu", infer={"flip": flip, "fusion_scales": scales})
        calls[name] = lambda p=predict: p(rgb)
    summary = summarize(measure(calls, repeats, warmup=2), reference="none")
    return {name: {"ms": round(summary["median_ms"][name], 1), "ratio": round(summary["ratio_median"][name], 2)}
            for name in SETTINGS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", nargs="+", required=True)
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for the eval runs")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    result = {"split": f"{SPLIT} (60 held-out CUHK TR-1 photographs)", "settings": SETTINGS,
              "scores": scores(args.ckpt, args.work), "cost_640x480_cpu": cost(args.ckpt[0], args.repeats)}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
