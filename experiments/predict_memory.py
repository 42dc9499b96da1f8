"""Peak memory (RSS) of ``python -m dbd_lightning.predict`` on a 48 MP photo, and of building the int8 graph.

Each case is one whole predict command under ``/usr/bin/time -v`` (its "Maximum resident set size"),
with the released model the README recommends (``ckpt=zoo:dffnet_lite0_synth``) and the defaults of
``conf/predict.yaml`` (``backend=auto``: the shipped ONNX graph in onnxruntime on a CPU machine):

* ``small``: a 640x480 photo: the model and libraries, nearly no photo (the baseline);
* ``photo_48mp``: an 8000x6000 photo (synthesized: smooth shapes + texture, JPEG quality 92; not a
  benchmark photo), tiled as predict does by default;
* ``int8_build``: the 640x480 photo with ``backend=onnxruntime_int8`` and an empty cache
  (``DBD_CACHE_DIR``), so the run builds (calibrates, quantizes, checks) the int8 graph; once per
  ``--int8-chunks`` value (``int8.calibration_chunk``: calibration images held at once; the case of the
  default 4 is ``int8_build``, the others ``int8_build_chunk<N>``).

Bytes per pixel = (peak of ``photo_48mp`` - peak of ``small``) / (pixels of the big photo - of the small
one): what predict needs per pixel beyond the loaded model, the quantity ``memory.bytes_per_pixel``
estimates (``inference/image_memory.py``). Bytes per calibration pixel = (peak of an int8 build - peak of
``small``) / (chunk x 320 x 320): what ``int8.build_bytes_per_pixel`` estimates (``inference/quantize.py``);
with two or more chunks, a straight line through them says how much of it grows with the chunk. Writes ``experiments/predict_memory.json`` (``--append``: adds this
run to the ones already there; the baseline's peak varies by ~0.1 GB from run to run, the 48 MP one much less).

    nice -n 19 python experiments/predict_memory.py [--out experiments/predict_memory.json]
        [--ckpt zoo:dffnet_lite0_synth] [--size 8000x6000] [--cases small photo_48mp int8_build] [--int8-chunks 4] [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CASES = ("small", "photo_48mp", "int8_build")


def synth_photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """A photo-like JPEG (smooth colour fields, a few discs, grain), built in row blocks (little memory)."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.uint8)
    xs = np.linspace(0, 1, width, dtype=np.float32)
    discs = rng.uniform(0, 1, (12, 3)) * np.array([width, height, min(width, height) / 4])
    colours = rng.uniform(40, 220, (12, 3)).astype(np.float32)
    for top in range(0, height, 500):
        rows = np.arange(top, min(height, top + 500), dtype=np.float32)
        yy, xx = np.meshgrid(rows / height, xs, indexing="ij")
        block = np.stack([120 + 80 * np.sin(6 * xx + 3 * yy), 110 + 70 * np.cos(5 * yy - 2 * xx),
                          100 + 60 * np.sin(4 * (xx + yy))], axis=-1)
        for (cx, cy, r), c in zip(discs, colours, strict=True):
            inside = (xx * width - cx) ** 2 + (yy * height - cy) ** 2 < r ** 2
            block[inside] = c
        block += rng.normal(0, 6, block.shape).astype(np.float32)
        img[top:top + len(rows)] = np.clip(block, 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, quality=92)
    return path


def peak_rss(args: list[str], env: dict, log: Path) -> dict:
    """Run ``python -m dbd_lightning.predict <args>`` under ``/usr/bin/time -v``; peak RSS and wall time."""
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "dbd_lightning.predict", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"predict failed (exit {proc.returncode}), see {log}:\n{proc.stderr[-2000:]}")
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {"peak_rss_MiB": round(kib / 1024, 1), "wall_s": round(wall, 1), "command": " ".join(cmd[3:])}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "experiments" / "predict_memory.json"))
    ap.add_argument("--ckpt", default="zoo:dffnet_lite0_synth")
    ap.add_argument("--size", default="8000x6000", help="WIDTHxHEIGHT of the big photo")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--int8-chunks", nargs="+", type=int, default=[4],
                    help="int8.calibration_chunk values of the int8_build case (one build each)")
    ap.add_argument("--append", action="store_true", help="add this run to the runs already in --out")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    small = (640, 480)
    with tempfile.TemporaryDirectory(prefix="dbd_predict_memory_") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   DBD_LOG_DIR=str(tmp / "outputs"), DBD_CACHE_DIR=str(tmp / "cache"), WANDB_MODE="offline",
                   HF_HUB_OFFLINE="1")
        photos = {"small": synth_photo(tmp / "small.jpg", *small, seed=1)}
        if "photo_48mp" in args.cases:
            photos["big"] = synth_photo(tmp / "big.jpg", width, height)
        common = [f"ckpt={args.ckpt}", "hydra.run.dir=" + str(tmp / "hydra")]
        results: dict = {}
        jobs = [(case, []) for case in args.cases if case != "int8_build"]
        if "int8_build" in args.cases:
            jobs += [("int8_build" if n == 4 else f"int8_build_chunk{n}",
                      ["backend=onnxruntime_int8", f"int8.calibration_chunk={n}"]) for n in args.int8_chunks]
        for case, extra in jobs:
            photo = photos["big" if case == "photo_48mp" else "small"]
            run_env = dict(env, DBD_CACHE_DIR=str(tmp / f"cache_{case}"))  # empty: int8_build builds its graph
            results[case] = peak_rss([*common, f"input={photo}", f"output={tmp / ('pred_' + case)}", *extra],
                                     run_env, tmp / f"{case}.log")
            if extra:
                built = sorted(p.name for p in (tmp / f"cache_{case}").rglob("*.int8.onnx"))
                results[case]["int8_graphs_built"] = built
                results[case]["int8.calibration_chunk"] = int(extra[1].split("=")[1])
            print(case, results[case], flush=True)
    import yaml

    run: dict = {"commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                          text=True).stdout.strip(),
                 "date": time.strftime("%Y-%m-%d %H:%M"), "load_average_at_end": [round(v, 1) for v in os.getloadavg()],
                 # without the graphs `make setup` builds (zoo --build-graphs), the first predict exports one from
                 # torch: torch is imported and the baseline is ~1 GiB instead of ~0.2
                 "zoo_graphs_built": sorted(p.name for p in (REPO / "src" / "dbd_lightning" / "zoo" / "weights").glob(
                     "*.dyn.onnx")),
                 "cases": results}
    if "small" in results and "photo_48mp" in results:
        grown = (results["photo_48mp"]["peak_rss_MiB"] - results["small"]["peak_rss_MiB"]) * 2**20
        run["bytes_per_pixel_measured"] = round(grown / (width * height - small[0] * small[1]), 2)
        run["measured_growth_big_GiB"] = round(grown / 2**30, 2)
    builds = {r["int8.calibration_chunk"]: r["peak_rss_MiB"] for r in results.values() if "int8.calibration_chunk" in r}
    if builds and "small" in results:
        calib_pixels = 320 * 320  # the released model's graph size
        run["int8_build_bytes_per_calibration_pixel"] = {
            str(n): round((peak - results["small"]["peak_rss_MiB"]) * 2**20 / (n * calib_pixels))
            for n, peak in sorted(builds.items())}
        if len(builds) >= 2:
            chunks, peaks = zip(*sorted(builds.items()), strict=True)
            slope, intercept = np.polyfit(chunks, peaks, 1)
            run["int8_build_fit_MiB"] = {"per_chunk_image": round(float(slope), 1),
                                         "fixed_over_small": round(float(intercept) - results["small"]["peak_rss_MiB"], 1)}
    bpp = yaml.safe_load((REPO / "conf" / "predict.yaml").read_text())["memory"]["bytes_per_pixel"]
    path = Path(args.out)
    earlier = json.loads(path.read_text())["runs"] if args.append and path.is_file() else []
    runs = [*earlier, run]
    measured = [r["bytes_per_pixel_measured"] for r in runs if "bytes_per_pixel_measured" in r]
    out: dict = {
        "what": "peak RSS of whole predict commands (/usr/bin/time -v), released model, default settings",
        "ckpt": args.ckpt, "small_photo": list(small), "big_photo": [width, height],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "memory.bytes_per_pixel (conf/predict.yaml)": bpp,
        "estimate_big_GiB": round(width * height * bpp / 2**30, 2),
        "bytes_per_pixel_measured_range": [min(measured), max(measured)] if measured else None,
        "runs": runs,
    }
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
