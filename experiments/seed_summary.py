"""Per-seed and mean +- std test metrics of Hydra multirun sweeps, as Markdown tables.

    python experiments/seed_summary.py "DFFNet=SWEEP_A:stage1/" "D-DFFNet=SWEEP_A" "PDNet=SWEEP_B" \
        [--keys test/synthetic/mae test/synthetic/fbeta ...]

Each arm is ``NAME=SWEEP_DIR[:PREFIX]``: every Hydra job folder below ``SWEEP_DIR`` (a folder
with ``.hydra/overrides.yaml`` and ``metrics.json``; the stage folders of a two-stage job are
not jobs) contributes the metrics ``PREFIX + key`` of its ``metrics.json``, labelled by the
job's ``seed``. The two-stage pipeline stores stage 1's metrics under ``stage1/``, so one sweep
gives two arms. std is the sample standard deviation (n - 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

DEFAULT_KEYS = ["test/synthetic/mae", "test/synthetic/fbeta", "test/synthetic/iou", "test/synthetic/max_fbeta"]


def load_jobs(sweep: Path, prefix: str, keys: list[str]) -> dict[int, dict[str, float]]:
    """seed -> {key: value} for every job of ``sweep`` (keys without ``prefix``)."""
    out: dict[int, dict[str, float]] = {}
    for metrics in sorted(sweep.rglob("metrics.json")):
        hydra = metrics.parent / ".hydra"
        if not (hydra / "overrides.yaml").is_file():
            continue
        seed = next(int(line.split(":", 1)[1]) for line in (hydra / "config.yaml").read_text().splitlines()
                    if line.startswith("seed:"))
        values = json.loads(metrics.read_text())
        missing = [prefix + k for k in keys if prefix + k not in values]
        if missing:
            raise KeyError(f"{metrics} has no {', '.join(missing)}")
        if seed in out:
            raise ValueError(f"{sweep} holds two jobs with seed {seed}")
        out[seed] = {k: values[prefix + k] for k in keys}
    if not out:
        raise FileNotFoundError(f"no Hydra job with metrics.json below {sweep}")
    return out


def parse_arm(spec: str) -> tuple[str, Path, str]:
    name, _, rest = spec.partition("=")
    folder, _, prefix = rest.partition(":")
    if not name or not folder:
        raise ValueError(f"arm {spec!r}: expected NAME=SWEEP_DIR[:PREFIX]")
    return name, Path(folder), prefix


def tables(arms: dict[str, dict[int, dict[str, float]]], keys: list[str]) -> str:
    names = [k.split("/")[-1] for k in keys]
    lines = ["| arm | seed | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(keys)]
    for arm, runs in arms.items():
        for seed, m in sorted(runs.items()):
            lines.append(f"| {arm} | {seed} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " |")
    lines += ["", "| arm | n | " + " | ".join(f"{n} (mean ± std)" for n in names) + " |",
              "|---|---|" + "---|" * len(keys)]
    for arm, runs in arms.items():
        cells = []
        for k in keys:
            vals = [m[k] for m in runs.values()]
            std = statistics.stdev(vals) if len(vals) > 1 else float("nan")
            cells.append(f"{statistics.mean(vals):.4f} ± {std:.4f}")
        lines.append(f"| {arm} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arms", nargs="+", help="NAME=SWEEP_DIR[:PREFIX]")
    ap.add_argument("--keys", nargs="+", default=DEFAULT_KEYS)
    args = ap.parse_args(argv)
    arms = {name: load_jobs(folder, prefix, args.keys) for name, folder, prefix in map(parse_arm, args.arms)}
    text = tables(arms, args.keys)
    print(text)
    return text


if __name__ == "__main__":
    main()
