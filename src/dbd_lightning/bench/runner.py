"""Benchmarks -> JSON (``make bench``): ms/image, images/s, peak memory per case.

Every case times with :mod:`dbd_lightning.utils.timer` (median of N after a warm-up, ratios to a reference run in
the same process). Each case runs in its own subprocess so its peak resident memory (ru_maxrss)
is its own. Numbers are wall-clock medians on this machine; compare ratios
across commits, not absolute values across machines.

    python -m dbd_lightning.bench --out bench/results.json [--cases dffnet_infer_resnet18 ...] [--quick]
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import time

from ..models import registry
from ..utils.errors import handle_user_errors
from .output import refuse_foreign, write_results

# name -> ("module:function", kwargs, kwargs for --quick); the function runs in a child process and returns
# a JSON-able dict. The shared cases are here; each paper declares its own in models/<paper>/__init__.py
# (PAPER.bench), added below from the registry.
SHARED_CASES: dict[str, tuple[str, dict, dict]] = {
    "recipe_cuhk_tr1_lite0": ("dbd_lightning.bench.recipe:bench_real_recipe", {"repeats": 3},
                              {"repeats": 1, "size": 128, "images": 8}),
    "synthetic_renderer": ("dbd_lightning.bench.renderer:bench_renderer", {"n": 100, "size": 320}, {"n": 20}),
    "synthetic_renderer_photographic": ("dbd_lightning.bench.renderer:bench_renderer",
                                        {"n": 100, "size": 320, "preset": "photographic"}, {"n": 20}),
    "metrics": ("dbd_lightning.bench.metrics:bench_metrics", {"n": 20}, {"n": 5}),
    # one DFFNet training step per trainer.precision / compile setting (16-mixed: GPUs only; quick: no compile)
    "train_step_precision": ("dbd_lightning.bench.precision:bench_train_step",
                             {"encoder": "resnet18", "size": 128, "batch": 2, "repeats": 5},
                             {"repeats": 2, "settings": ["32-true", "bf16-mixed", "16-mixed"]}),
    # whole commands as subprocesses (bench/startup.py): --help of every CLI; one photo with a released model
    "startup_help": ("dbd_lightning.bench.startup:bench_cli_help", {"repeats": 3}, {"repeats": 1}),
    "startup_predict_zoo": ("dbd_lightning.bench.startup:bench_predict_zoo", {"repeats": 3}, {"repeats": 1}),
    # predict: EBD-size image, whole-image resize vs native-resolution tiles; exported ONNX in onnxruntime vs torch
    "predict_tiling_ebd": ("dbd_lightning.bench.predict:bench_predict_tiling", {"repeats": 3},
                           {"repeats": 1, "height": 512, "width": 800}),
    "onnx_runtime_resnet18": ("dbd_lightning.bench.predict:bench_onnx_runtime", {"repeats": 5},
                              {"repeats": 1, "size": 128}),
    # backend=torch|onnxruntime (bench/backends.py): interleaved in one process, ratios to eager torch
    "backends_forward_resnest101e": ("dbd_lightning.bench.backends:bench_backend_forward",
                                     {"encoder": "resnest101e", "repeats": 10}, {"repeats": 2, "size": 128}),
    # the same on one thread (robust on a shared machine: spinning OpenMP threads inflate the 2-thread numbers)
    "backends_forward_resnest101e_1thread": ("dbd_lightning.bench.backends:bench_backend_forward",
                                             {"encoder": "resnest101e", "repeats": 3, "threads": 1},
                                             {"repeats": 2, "size": 128, "threads": 1}),
    "backends_forward_lite": ("dbd_lightning.bench.backends:bench_backend_forward",
                              {"encoder": "efficientnet_lite0", "repeats": 20}, {"repeats": 2, "size": 128}),
    # the released model (zoo:dffnet_lite0_synth) per backend, incl. onnxruntime_int8, with its real-sample scores
    "backends_forward_released": ("dbd_lightning.bench.released:bench_released_forward", {"repeats": 20},
                                  {"repeats": 2, "size": 128, "real_samples": False}),
    # the float32 floor: conv FLOPs / matmul throughput, for ResNeSt-101 DFFNet and the released Lite model
    "compute_floor": ("dbd_lightning.bench.floor:bench_compute_floor", {"repeats": 10},
                      {"repeats": 2, "size": 128, "matmul": 512}),
    "backends_eval_100_cuhk_size": ("dbd_lightning.bench.backends:bench_backend_eval",
                                    {"encoder": "resnest101e", "n": 100}, {"encoder": "resnet18", "n": 4}),
    "backends_eval_100_cuhk_size_resnet18": ("dbd_lightning.bench.backends:bench_backend_eval",
                                             {"encoder": "resnet18", "n": 100}, {"n": 4}),
}



CASES: dict[str, tuple[str, dict, dict]] = {**SHARED_CASES, **registry.bench_cases()}


def cases() -> dict[str, tuple[str, dict, dict]]:
    """Every case: :data:`CASES` and any paper declared since it was built (the registry read again)."""
    return {**registry.bench_cases(), **CASES}


def run_case(name: str, quick: bool) -> dict:
    known = cases()
    if name not in known:
        raise ValueError(f"unknown bench case {name!r}; cases: {sorted(known)}")
    target, kwargs, quick_kwargs = known[name]
    module, func = target.split(":")
    fn = getattr(importlib.import_module(module), func)
    return fn(**{**kwargs, **(quick_kwargs if quick else {})})


def _child(name: str, quick: bool) -> None:
    import torch

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
    known = cases()
    ap.add_argument("--cases", nargs="*", default=list(known), choices=known)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.quick)
        return {}
    refuse_foreign(args.out)  # before any case runs
    import torch  # after the arguments: --help needs no torch

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
    out = write_results(args.out, results)
    print(f"[bench] wrote {out}")
    failed = [name for name, res in results["cases"].items() if "error" in res]
    if failed:
        print(f"[bench] {len(failed)} case(s) failed: {', '.join(failed)} (their errors are in {out})", flush=True)
    return results


def cli(argv: list[str] | None = None) -> int:
    """Exit status of ``python -m dbd_lightning.bench``: 1 if any case failed (its error is in the JSON)."""
    with handle_user_errors(log_file=False):  # error: <message>, exit 2
        return 1 if any("error" in r for r in main(argv).get("cases", {}).values()) else 0
