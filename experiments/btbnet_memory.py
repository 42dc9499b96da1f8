"""Measure BTBNet's training-step / inference time and peak memory at 320x320 (batch 1).

    PYTHONPATH=src python experiments/btbnet_memory.py --device cuda --out btbnet_memory_gpu.json

Runs every Table 2 variant at paper widths through
:func:`dbd_lightning.models.btbnet.bench.bench_btbnet_step`. Results: experiments/btbnet_memory.md.
"""

import argparse
import json

from dbd_lightning.models.btbnet.bench import bench_btbnet_step

VARIANTS = {
    "vggnet_fc": dict(scales=[1.0], fusion="none", rrnet_steps=0, top_bottom=False),
    "1s": dict(scales=[1.0], fusion="none", rrnet_steps=0),
    "2s_fnet": dict(scales=[1.0, 0.8], rrnet_steps=0),
    "3s_fnet": dict(scales=[1.0, 0.8, 0.6], rrnet_steps=0),
    "4s_fnet": dict(scales=[1.0, 0.8, 0.6, 0.4], rrnet_steps=0),
    "full_3s_fnet_rrnet": dict(scales=[1.0, 0.8, 0.6], rrnet_steps=3),
}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="btbnet_memory.json")
    args = ap.parse_args()
    results = {}
    for name, kw in VARIANTS.items():
        results[name] = bench_btbnet_step(size=args.size, repeats=args.repeats, device=args.device, **kw)
        print(name, json.dumps(results[name]), flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
