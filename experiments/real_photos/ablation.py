"""Ablation at the demo's budget: what moves the real numbers (init, blur scale, scene type, resolution, inference mode).

    python experiments/real_photos/ablation.py --runs /root/dbd_runs/ablation [--seeds 0 1 2] [--only base,...]
    python experiments/real_photos/ablation.py --runs /root/dbd_runs/ablation --summary   # table only

Every condition is ``experiment=demo`` (DFFNet-Lite0, ImageNet init, photographic scenes at the measured
blur scale, 256 px, 3 x 50 steps of batch 8) with ONE change (``CONDITIONS``). Each (condition, seed) is
one training subprocess into ``<runs>/<condition>_s<seed>``; a finished run (``result.json`` present) is
skipped, so the script continues where a stopped session left it. The checkpoint of each run is picked
on its own synthetic validation MAE (never on the real photographs), then scored on the 10 real
photographs shipped in the package (``data=real_mini``, D-DFFNet convention) in three inference modes:

* ``resize``: the papers' protocol, the image resized to the training size (= the blur scale the
  network was trained at, since the scenes' radii are drawn in px at the input size);
* ``native``: ``infer.mode=scale infer.scale=1.0``, the 320 px photographs at their own pixel scale;
* ``tile``: ``infer.mode=tile infer.scale=1.0``, training-size tiles at native scale, hann-blended.

The per-run records are written to ``experiments/real_photos/ablation/`` and summarised (mean, min-max over
seeds) in ``ablation.md`` there and in the study (README.md, between its two table markers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDS = HERE / "ablation"

#: condition -> the one override list that differs from ``experiment=demo``
CONDITIONS: dict[str, list[str]] = {
    "base": [],
    "random_init": ["model.net.pretrained=false"],
    "collage_scenes": [
        "data=synthetic", "data.image_size=[256,256]", "data.render_size=[256,256]", "data.batch_size=8",
        "data.eval_batch_size=8", "data.num_workers=1", "data.train_length=20000", "data.val_length=32",
        "data.test_length=64", "data.datamodule.train_transform.flip=horizontal",
        "data.datamodule.train_transform.color_jitter=null",
    ],
    # the benchmarks' blur halved (and the in-focus threshold with it): scenes at the wrong blur scale
    "half_blur_scale": ["+data.render_overrides.blur_radius_px=[0.75,4.0]", "+data.render_overrides.r0=0.5"],
    "input_128px": ["data.image_size=[128,128]", "data.render_size=[128,128]"],
}
MODES = {"resize": {"mode": "resize"}, "native": {"mode": "scale", "scale": 1.0},
         "tile": {"mode": "tile", "scale": 1.0}}  # infer.* of each mode
COMMON = ["experiment=demo", "logger=csv", "real_report.enabled=false", "callbacks.progress_bar.refresh_rate=0"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(WANDB_MODE="offline", HF_HUB_OFFLINE="1", NO_ALBUMENTATIONS_UPDATE="1")
    return env


def train_one(run_dir: Path, condition: str, seed: int) -> float:
    cmd = [sys.executable, "-m", "dbd_lightning.train", *COMMON, *CONDITIONS[condition],
           f"seed={seed}", f"hydra.run.dir={run_dir}"]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=_env())
    return time.time() - t0


def score_run(run_dir: Path) -> dict:
    from dbd_lightning.inference.predictor import CheckpointPredictor
    from dbd_lightning.reports.real_samples import score_on_real_samples
    from dbd_lightning.runs.resolver import find_checkpoint
    from dbd_lightning.runs.run import RunCheckpoint

    run = RunCheckpoint(run_dir, find_checkpoint(run_dir, "best"))
    out = {"checkpoint": run.ckpt.name}
    for name, kw in MODES.items():
        pred = CheckpointPredictor.from_run(run, {"tile": {"mode": False}, "infer": kw}, device="cpu", backend="torch")
        out[name] = score_on_real_samples(lambda rgb, p=pred: p.predict_image(rgb)["focus"], {"preset": "ddffnet"})
    return out


def _synthetic_test(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    return {k: v for k, v in metrics.items() if k.startswith("test/") and ("synthetic" in k or "photographic" in k)}


def summarise() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(RECORDS.glob("*.json"))]
    lines = ["| condition | seeds | mode | CUHK MAE / F / IoU | DUT MAE / F / IoU | all 10: mean MAE | pooled IoU |",
             "|---|---|---|---|---|---|---|"]

    def cell(vals: list[float]) -> str:
        m = statistics.mean(vals)
        return f"{m:.3f}" if len(vals) == 1 else f"{m:.3f} ({min(vals):.3f}-{max(vals):.3f})"

    for cond in CONDITIONS:
        runs = [r for r in rows if r["condition"] == cond]
        if not runs:
            continue
        for mode in MODES:
            def get(subset: str, key: str, runs=runs, mode=mode) -> list[float]:
                return [r["real"][mode][subset][key] for r in runs]

            cuhk = " / ".join(f"{statistics.mean(get('real_cuhk', k)):.3f}" for k in ("mae", "fbeta", "iou"))
            dut = " / ".join(f"{statistics.mean(get('real_dut', k)):.3f}" for k in ("mae", "fbeta", "iou"))
            lines.append(f"| {cond} | {len(runs)} | {mode} | {cuhk} | {dut} | {cell(get('all', 'mae'))} | "
                         f"{cell(get('all', 'iou'))} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, required=True, help="folder for the training runs (outside the repo)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", default="", help="comma-separated conditions (default: all)")
    ap.add_argument("--summary", action="store_true", help="only rewrite ablation.md from the records")
    args = ap.parse_args()
    RECORDS.mkdir(exist_ok=True)
    conditions = [c for c in args.only.split(",") if c] or list(CONDITIONS)
    if not args.summary:
        for seed in args.seeds:            # seed-major: a partial run still covers every condition
            for cond in conditions:
                record = RECORDS / f"{cond}_s{seed}.json"
                if record.exists():
                    continue
                run_dir = args.runs / f"{cond}_s{seed}"
                finished = (run_dir / "metrics.json").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()
                if finished:               # trained, not scored yet
                    wall = float("nan")
                else:
                    if run_dir.exists():   # an interrupted run: start it again from scratch
                        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
                    wall = train_one(run_dir, cond, seed)
                rec = {"condition": cond, "seed": seed, "overrides": COMMON + CONDITIONS[cond],
                       "train_wall_s": round(wall, 1), "synthetic_test": _synthetic_test(run_dir),
                       "real": score_run(run_dir)}
                record.write_text(json.dumps(rec, indent=1))
                print(f"{cond} seed {seed}: {wall / 60:.1f} min, real all MAE "
                      f"{rec['real']['resize']['all']['mae']:.3f}", flush=True)
    table = summarise()
    (RECORDS / "ablation.md").write_text(table + "\n")
    readme = HERE / "README.md"  # the study quotes the table between two markers
    start, end = "<!-- ablation table: written by ablation.py -->\n", "<!-- /ablation table -->"
    text = readme.read_text()
    if start in text and end in text:
        head, rest = text.split(start, 1)
        readme.write_text(head + start + table + "\n" + end + rest.split(end, 1)[1])
    print(table)


if __name__ == "__main__":
    main()
