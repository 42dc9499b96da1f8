"""Benchmarks -> JSON (``make bench``): ms/image, images/s, peak memory per case.

Each case runs in its own subprocess so its peak resident memory (ru_maxrss)
is its own. Numbers are wall-clock medians on this machine; compare ratios
across commits, not absolute values across machines.

    python -m dbd_lightning.bench --out bench/results.json [--cases dffnet_infer_resnet18 ...] [--quick]
"""

from __future__ import annotations

from . import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

# name -> ("module:function", kwargs, kwargs for --quick). Families register their cases here;
# the function runs in a child process and returns a JSON-able dict.
CASES: dict[str, tuple[str, dict, dict]] = {
    "dffnet_infer_resnest101e": ("dbd_lightning.bench:bench_dffnet_infer",
                                 {"encoder": "resnest101e", "repeats": 10}, {"repeats": 3}),
    "dffnet_infer_resnet18": ("dbd_lightning.bench:bench_dffnet_infer",
                              {"encoder": "resnet18", "repeats": 10}, {"repeats": 3}),
    "dffnet_train_resnest101e": ("dbd_lightning.bench:bench_dffnet_train",
                                 {"encoder": "resnest101e", "repeats": 3}, {"repeats": 1}),
    "dffnet_train_resnet18": ("dbd_lightning.bench:bench_dffnet_train",
                              {"encoder": "resnet18", "repeats": 3}, {"repeats": 1}),
    "synthetic_renderer": ("dbd_lightning.data.synthetic.bench:bench_renderer", {"n": 100, "size": 320}, {"n": 20}),
    "synthetic_renderer_photographic": ("dbd_lightning.data.synthetic.bench:bench_renderer",
                                        {"n": 100, "size": 320, "preset": "photographic"}, {"n": 20}),
    "metrics": ("dbd_lightning.metrics.bench:bench_metrics", {"n": 20}, {"n": 5}),
    # one DFFNet training step per trainer.precision / compile setting (16-mixed: GPUs only; quick: no compile)
    "train_step_precision": ("dbd_lightning.utils.bench_precision:bench_train_step",
                             {"encoder": "resnet18", "size": 128, "batch": 2, "repeats": 5},
                             {"repeats": 2, "settings": ["32-true", "bf16-mixed", "16-mixed"]}),
    # predict: EBD-size image, whole-image resize vs native-resolution tiles; exported ONNX in onnxruntime vs torch
    "predict_tiling_ebd": ("dbd_lightning.bench_predict:bench_predict_tiling", {"repeats": 3},
                           {"repeats": 1, "height": 512, "width": 800}),
    "onnx_runtime_resnet18": ("dbd_lightning.bench_predict:bench_onnx_runtime", {"repeats": 5}, {"repeats": 1, "size": 128}),
    # backend=torch|onnxruntime (inference/bench.py): interleaved in one process, ratios to eager torch
    "backends_forward_resnest101e": ("dbd_lightning.inference.bench:bench_backend_forward",
                                     {"encoder": "resnest101e", "repeats": 10}, {"repeats": 2, "size": 128}),
    # the same on one thread (robust on a shared machine: spinning OpenMP threads inflate the 2-thread numbers)
    "backends_forward_resnest101e_1thread": ("dbd_lightning.inference.bench:bench_backend_forward",
                                             {"encoder": "resnest101e", "repeats": 3, "threads": 1},
                                             {"repeats": 2, "size": 128, "threads": 1}),
    "backends_forward_lite": ("dbd_lightning.inference.bench:bench_backend_forward",
                              {"encoder": "efficientnet_lite0", "repeats": 20}, {"repeats": 2, "size": 128}),
    "backends_eval_100_cuhk_size": ("dbd_lightning.inference.bench:bench_backend_eval",
                                    {"encoder": "resnest101e", "n": 100}, {"encoder": "resnet18", "n": 4}),
    "backends_eval_100_cuhk_size_resnet18": ("dbd_lightning.inference.bench:bench_backend_eval",
                                             {"encoder": "resnet18", "n": 100}, {"n": 4}),
    # BTBNet full model (3S + FNet + RRNet x3, paper widths), one SGD step at 320 px, batch 1
    "btbnet_train_320": ("dbd_lightning.models.btbnet.bench:bench_btbnet_step", {"size": 320}, {"size": 64}),
    # DD (Cun & Pun 2020): forward at the authors' 320 px, encoder vs SRFB decoder, FLOPs, params
    "ddnet_infer_resnext101": ("dbd_lightning.models.ddnet.bench:bench_ddnet_infer",
                               {"encoder": "resnext101_32x4d", "repeats": 5}, {"repeats": 1, "size": 128}),
    "ddnet_infer_resnet18": ("dbd_lightning.models.ddnet.bench:bench_ddnet_infer",
                             {"encoder": "resnet18", "repeats": 5}, {"repeats": 1, "size": 128}),
    # Karaali: full pipeline s / image at the Lytro size 360x360 (paper: 4.55 s, Python/GPU), DT filter alone
    "karaali_pipeline_360": ("dbd_lightning.models.karaali.bench:bench_pipeline", {"repeats": 3},
                             {"repeats": 1, "size": 96}),
    "karaali_pipeline_360_bf16": ("dbd_lightning.models.karaali.bench:bench_pipeline",
                                  {"repeats": 3, "precision": "bfloat16"}, {"repeats": 1, "size": 96,
                                                                            "precision": "bfloat16"}),
    # wide_stride=3: the 41/27 streams at their native stride (an approximation, see the family README)
    "karaali_pipeline_360_wide_stride3": ("dbd_lightning.models.karaali.bench:bench_pipeline",
                                          {"repeats": 3, "wide_stride": 3}, {"repeats": 1, "size": 96,
                                                                             "wide_stride": 3}),
    "karaali_pipeline_360_per_cell": ("dbd_lightning.models.karaali.bench:bench_pipeline",
                                      {"repeats": 3, "wide_stride": 3, "per_cell": True},
                                      {"repeats": 1, "size": 96, "wide_stride": 3, "per_cell": True}),
    "dt_filter_360": ("dbd_lightning.models.karaali.bench:bench_dt_filter", {"repeats": 10}, {"repeats": 2}),
    # the same on one thread (robust on a shared machine: spinning OpenMP threads inflate the 2-thread numbers)
    "karaali_pipeline_360_1thread": ("dbd_lightning.models.karaali.bench:bench_pipeline",
                                     {"repeats": 3, "threads": 1}, {"repeats": 1, "size": 96, "threads": 1}),
    "karaali_pipeline_360_bf16_1thread": ("dbd_lightning.models.karaali.bench:bench_pipeline",
                                          {"repeats": 3, "threads": 1, "precision": "bfloat16"},
                                          {"repeats": 1, "size": 96, "threads": 1, "precision": "bfloat16"}),
    "dt_filter_360_1thread": ("dbd_lightning.models.karaali.bench:bench_dt_filter", {"repeats": 10, "threads": 1},
                              {"repeats": 2, "threads": 1}),
}


def _timeit(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def bench_dffnet_infer(encoder: str, size: int = 320, repeats: int = 10) -> dict:
    """Forward time of DFFNet vs its timm backbone alone (batch 1, inference mode)."""

    from torch.utils.flop_counter import FlopCounterMode

    from .models.dffnet import DFFNet

    net = DFFNet(encoder).eval()
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        feats = net.encoder(x)

        def decoder(model=net):
            r4, r3, r2, r1 = model.rfb_levels(feats)
            return model.decoder(r1, r2, r3, r4)

        full = statistics.median(_timeit(lambda: net(x), repeats))
        backbone = statistics.median(_timeit(lambda: net.encoder(x), repeats))
        dec = statistics.median(_timeit(decoder, repeats))
        # the same weights with model.net.channels_last_decoder=true
        net_cl = DFFNet(encoder, channels_last_decoder=True).eval()
        net_cl.load_state_dict(net.state_dict())
        dec_cl = statistics.median(_timeit(lambda: decoder(net_cl), repeats))
        cl_diff = float((net_cl(x)["logits"] - net(x)["logits"]).abs().max())
        with FlopCounterMode(display=False) as backbone_flops:
            net.encoder(x)
        with FlopCounterMode(display=False) as decoder_flops:
            decoder()
    params = sum(p.numel() for p in net.parameters())
    dec_params = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("encoder."))
    return {
        "encoder": encoder, "size": size, "batch": 1,
        "ms_per_image": full * 1e3, "images_per_s": 1 / full,
        "backbone_ms": backbone * 1e3, "decoder_ms": dec * 1e3,
        "decoder_over_backbone": dec / backbone,
        "decoder_channels_last_ms": dec_cl * 1e3, "decoder_channels_last_over_backbone": dec_cl / backbone,
        "channels_last_max_abs_diff": cl_diff,
        "backbone_gflops": backbone_flops.get_total_flops() / 1e9,
        "decoder_gflops": decoder_flops.get_total_flops() / 1e9,
        "decoder_over_backbone_flops": decoder_flops.get_total_flops() / backbone_flops.get_total_flops(),
        "params_total_M": params / 1e6, "params_decoder_M": dec_params / 1e6,
    }


def bench_dffnet_train(encoder: str, size: int = 320, batch: int = 6, repeats: int = 3) -> dict:
    """One Adam step of DFFNet with the paper loss (BCE + 0.5 DOF-edge Dice, final + sides)."""
    from .losses.detection import DeepSupervisionLoss
    from .losses.dof_edge import DOFEdgeDiceLoss
    from .models.dffnet import DFFNet

    net = DFFNet(encoder).train()
    loss_fn = DeepSupervisionLoss(DOFEdgeDiceLoss(), edge_weight=0.5)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    batch_data = {"image": torch.randn(batch, 3, size, size), "mask": (torch.rand(batch, 1, size, size) > 0.5).float()}

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(batch_data["image"]), batch_data)["loss"].backward()
        opt.step()

    t = statistics.median(_timeit(step, repeats, warmup=1))
    return {"encoder": encoder, "size": size, "batch": batch, "ms_per_step": t * 1e3,
            "ms_per_image": t * 1e3 / batch, "images_per_s": batch / t}


def run_case(name: str, quick: bool) -> dict:
    if name not in CASES:
        raise ValueError(f"unknown bench case {name!r}; cases: {sorted(CASES)}")
    target, kwargs, quick_kwargs = CASES[name]
    module, func = target.split(":")
    fn = getattr(importlib.import_module(module), func)
    return fn(**{**kwargs, **(quick_kwargs if quick else {})})


def _child(name: str, quick: bool) -> None:
    torch.set_num_threads(int(os.environ.get("DBD_BENCH_THREADS", os.cpu_count() or 1)))
    result = run_case(name, quick)
    result["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH_JSON " + json.dumps(result), flush=True)


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results.json")
    ap.add_argument("--cases", nargs="*", default=list(CASES), choices=CASES)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.quick)
        return {}
    results = {
        "commit": _git_commit(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "cases": {},
    }
    for name in args.cases:
        cmd = [sys.executable, "-m", "dbd_lightning.bench", "--child", name] + (["--quick"] if args.quick else [])
        print(f"[bench] {name} ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
        if proc.returncode != 0 or line is None:
            results["cases"][name] = {"error": (proc.stderr or proc.stdout)[-2000:]}
            print(f"[bench] {name} FAILED:\n{proc.stderr[-2000:]}", flush=True)
            continue
        results["cases"][name] = json.loads(line.removeprefix("BENCH_JSON "))
        print(f"[bench] {name}: {json.dumps(results['cases'][name])}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"[bench] wrote {out}")
    failed = [name for name, res in results["cases"].items() if "error" in res]
    if failed:
        print(f"[bench] {len(failed)} case(s) failed: {', '.join(failed)} (their errors are in {out})", flush=True)
    return results


def cli(argv: list[str] | None = None) -> int:
    """Exit status of ``python -m dbd_lightning.bench``: 1 if any case failed (its error is in the JSON)."""
    return 1 if any("error" in r for r in main(argv).get("cases", {}).values()) else 0


if __name__ == "__main__":
    sys.exit(cli())
