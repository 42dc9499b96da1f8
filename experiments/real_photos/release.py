"""Release a trained run as a zoo model and check it end to end (writes the model card's numbers).

    python experiments/real_photos/release.py --run <train run folder> [--ckpt <file>] --name dffnet_lite0_synth \
        --command "python -m dbd_lightning.train experiment=dffnet_lite_synth" --out experiments/real_photos/release.json

1. ``zoo.release``: float16 safetensors + rebuild config into src/dbd_lightning/zoo/weights/, and the
   ONNX graph shipped beside it (``zoo.graphs``: predict runs it without torch).
2. The released file against the float32 checkpoint: max |Δ probability| on the real samples.
3. The real samples (papers' protocol, 320 px) next to the constant predictors.
4. ``predict`` and ``eval`` CLIs with ``ckpt=zoo:<name>`` (subprocesses, nothing else on disk) and the ONNX
   export: the same maps (max |Δ|).
5. Forward time per 320 x 320 image (2 threads, median of 20, after warm-up), eager torch.
6. With ``--eval-data cuhk_tr1`` (any data config): ``eval ckpt=zoo:<name> data=<it>`` for the released file,
   and the same for the run's float32 checkpoint (its test sets: the TR-1 hold-out, TE-1 when on disk).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from dbd_lightning.data.real_mini import REAL_MINI_SUBSETS, real_mini_folder
from dbd_lightning.inference.predictor import CheckpointPredictor
from dbd_lightning.inference.settings import InferenceSettings
from dbd_lightning.reports.real_samples import CONSTANTS, score_on_real_samples
from dbd_lightning.runs.resolver import find_checkpoint
from dbd_lightning.runs.run import RunCheckpoint
from dbd_lightning.zoo import release, resolve_zoo
from dbd_lightning.zoo.graphs import build_released_graph


def _forward_ms(net: torch.nn.Module, size: int = 320, repeats: int = 20) -> float:
    torch.set_num_threads(2)
    x = torch.randn(1, 3, size, size)
    net = net.eval()
    with torch.inference_mode():
        for _ in range(3):
            net(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--ckpt", type=Path, default=None, help="default: the run's best checkpoint")
    ap.add_argument("--name", default="dffnet_lite0_synth")
    ap.add_argument("--command", required=True)
    ap.add_argument("--card", type=Path, required=True, help="model card (markdown) to ship")
    ap.add_argument("--out", type=Path, default=Path("experiments/real_photos/release.json"))
    ap.add_argument("--eval-data", default=None, help="also score the release and the checkpoint on this data config")
    args = ap.parse_args()
    ckpt = args.ckpt or find_checkpoint(args.run, "best")
    run = RunCheckpoint(args.run, ckpt)
    release(run, args.name, args.card.read_text(), extra={"command": args.command})
    zoo = resolve_zoo(args.name)
    graph = build_released_graph(zoo)
    res: dict = {"name": args.name, "source_checkpoint": str(ckpt), "command": args.command,
                 "file_mb": round(zoo.ckpt.stat().st_size / 2**20, 2),
                 "onnx_graph_mb": round(graph.stat().st_size / 2**20, 2)}

    fp32 = CheckpointPredictor.from_run(run, InferenceSettings.papers_protocol(), device="cpu")
    fp16 = CheckpointPredictor.from_run(zoo, InferenceSettings.papers_protocol(), device="cpu")
    diffs = []
    for subset in REAL_MINI_SUBSETS:
        ds = real_mini_folder(subset)
        for i in range(len(ds)):
            rgb = ds[i]["image"]
            diffs.append(float(np.abs(fp32.predict_image(rgb)["focus"] - fp16.predict_image(rgb)["focus"]).max()))
    res["fp16_vs_fp32_max_abs"] = max(diffs)
    metrics_cfg = {"preset": "ddffnet"}
    res["real_samples"] = {"released": score_on_real_samples(lambda rgb: fp16.predict_image(rgb)["focus"], metrics_cfg)}
    for name, value in CONSTANTS.items():
        res["real_samples"][name] = score_on_real_samples(value, metrics_cfg)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = real_mini_folder("real_cuhk").root / "image"
        subprocess.run([sys.executable, "-m", "dbd_lightning.predict", f"ckpt=zoo:{args.name}", f"input={src}",
                        f"output={tmp / 'pred'}", "save_npy=true", "overlay=false", f"hydra.run.dir={tmp / 'h'}"],
                       check=True, capture_output=True)
        cli = []
        for f in sorted(src.iterdir()):
            npy = next((tmp / "pred").rglob(f"{f.stem}*.npy"))
            rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
            cli.append(float(np.abs(np.load(npy) - fp16.predict_image(rgb)["focus"]).max()))
        res["predict_cli_vs_python_max_abs"] = max(cli)
        ev = subprocess.run([sys.executable, "-m", "dbd_lightning.eval", f"ckpt=zoo:{args.name}", "data=real_mini",
                             f"hydra.run.dir={tmp / 'e'}"], check=True, capture_output=True, text=True)
        res["eval_cli_tail"] = ev.stdout[-1500:]
        ex = subprocess.run([sys.executable, "-m", "dbd_lightning.export", f"ckpt=zoo:{args.name}", "formats=[onnx]",
                             f"hydra.run.dir={tmp / 'x'}"], capture_output=True, text=True)
        res["export_rc"] = ex.returncode
        found = list((tmp / "x").rglob("export.json"))
        res["export"] = json.loads(found[0].read_text()) if found else ex.stderr[-1500:]
        if args.eval_data:
            res["eval_data"] = args.eval_data
            for label, spec in (("released", f"zoo:{args.name}"), ("float32_checkpoint", str(ckpt))):
                subprocess.run([sys.executable, "-m", "dbd_lightning.eval", f"ckpt={spec}", f"data={args.eval_data}",
                                "backend=torch", f"hydra.run.dir={tmp / label}"], check=True, capture_output=True)
                res[f"{args.eval_data}_{label}"] = json.loads((tmp / label / "metrics.json").read_text())
    res["forward_ms_320_2threads"] = _forward_ms(fp16.net)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "eval_cli_tail"}, indent=1))


if __name__ == "__main__":
    main()
