"""Summarise the DD with/without depth distillation runs (experiments/dd_synthetic.md).

    python experiments/dd_synthetic_summary.py NONE_SWEEP_DIR SYNTHETIC_SWEEP_DIR

Reads ``metrics.json`` of every job folder of the two Hydra multiruns and prints a Markdown
table of per-seed test metrics and mean +- std (sample std, n - 1) per arm.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

KEYS = ["test/synthetic/mae", "test/synthetic/fbeta", "test/synthetic/iou", "test/synthetic/max_fbeta"]


def load(sweep: Path) -> dict[int, dict[str, float]]:
    out = {}
    for metrics in sorted(sweep.rglob("metrics.json")):  # job folders may nest ("teacher/depth=none")
        config = metrics.parent / ".hydra" / "config.yaml"
        seed = next(int(line.split(":")[1]) for line in config.read_text().splitlines() if line.startswith("seed:"))
        out[seed] = json.loads(metrics.read_text())
    return out


def main(argv: list[str]) -> None:
    arms = {"without distillation (teacher/depth=none)": load(Path(argv[0])),
            "with distillation (synthetic DepthNet teacher)": load(Path(argv[1]))}
    names = [k.split("/")[-1] for k in KEYS]
    print("| arm | seed | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for arm, runs in arms.items():
        for seed, m in sorted(runs.items()):
            print(f"| {arm} | {seed} | " + " | ".join(f"{m[k]:.4f}" for k in KEYS) + " |")
    print()
    print("| arm | n | " + " | ".join(f"{n} (mean +- std)" for n in names) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for arm, runs in arms.items():
        cells = []
        for k in KEYS:
            vals = [m[k] for m in runs.values()]
            std = statistics.stdev(vals) if len(vals) > 1 else float("nan")
            cells.append(f"{statistics.mean(vals):.4f} +- {std:.4f}")
        print(f"| {arm} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
