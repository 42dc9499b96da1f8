"""What every study in ``experiments/`` shares: train arms one after another, resume them, tabulate them.

A study script declares its arms (:class:`Arm`: a folder name, a seed and the full ``train`` overrides)
and calls :func:`main`. ``run`` trains the arms in order, never two at once (two torch processes on
the 2 cores make each step ~10x slower); an arm whose folder holds ``metrics.json`` is done, one with
``checkpoints/last.ckpt`` continues from it, and a folder the study started that holds neither is started
again (a folder it did not start is refused). ``table`` prints the scores of every finished arm, mean and
range over seeds; ``curves`` writes each finished arm's validation curve and final scores as CSV;
``list`` prints each arm's command.

Scores are read from the run's ``metrics.json`` (``test/<split>/<metric>``: the weights after the last
step when the arm trains with ``test_ckpt=last``) and the curve from its CSV logger.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

STARTED = ".study_started"
METRICS = ("mae", "fbeta", "iou")


@dataclass
class Arm:
    """One training: its folder name (``<group>_s<seed>``), its seed and its complete overrides."""

    name: str
    seed: int
    args: list[str]
    skip: str | None = None  # why the arm cannot run with the options given (printed, not an error)

    @property
    def group(self) -> str:
        return self.name.rsplit("_s", 1)[0]


def run_arm(arm: Arm, folder: Path) -> int:
    """Train (or continue) one arm in ``folder``; returns the exit code of ``python -m dbd_lightning.train``."""
    if (folder / "metrics.json").is_file():
        return 0
    last = folder / "checkpoints" / "last.ckpt"
    if last.is_file():
        args = [f"run_dir={folder}", "ckpt_path=last"]
    else:
        if folder.exists():
            if not (folder / STARTED).is_file():
                sys.exit(f"{folder} exists and this study did not start it: move it away or pick another --out")
            shutil.rmtree(folder)  # started here, stopped before its first checkpoint
        folder.mkdir(parents=True)
        (folder / STARTED).write_text(" ".join(arm.args) + "\n")
        args = arm.args
    print(f"[study] {arm.name}: {' '.join(args)}", flush=True)
    with open(folder / "study.log", "a") as log:
        return subprocess.call([sys.executable, "-m", "dbd_lightning.train", *args], stdout=log,
                               stderr=subprocess.STDOUT)


def scores(folder: Path, split: str) -> dict[str, float] | None:
    """``{mae, fbeta, iou}`` of a finished arm on ``split`` (its test after training), or None."""
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    m = json.loads(path.read_text())
    return {k: m[f"test/{split}/{k}"] for k in METRICS}


def table(arms: Sequence[Arm], out: Path, split: str, label: str) -> str:
    """Markdown: one row per arm group, the mean over its finished seeds and, with two or more, the range."""
    groups: dict[str, list[dict[str, float]]] = {}
    for arm in arms:
        s = scores(out / arm.name, split)
        if s is not None:
            groups.setdefault(arm.group, []).append(s)
    lines = [f"| arm | seeds | {label} MAE | F-beta | IoU |", "|---|---|---|---|---|"]
    for key, runs in groups.items():
        cells = []
        for metric in METRICS:
            vals = [r[metric] for r in runs]
            cell = f"{statistics.fmean(vals):.3f}"
            cells.append(cell + (f" ({min(vals):.3f}-{max(vals):.3f})" if len(vals) > 1 else ""))
        lines.append(f"| {key} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves(arms: Sequence[Arm], out: Path, split: str, steps: int) -> str:
    """CSV of every finished arm's validation curve on ``split`` (``split`` column ``val``, step = optimizer
    steps done) and its final test scores (``test``, at ``steps``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["arm", "seed", "step", *METRICS, "split"])
    for arm in arms:
        folder = out / arm.name
        final = scores(folder, split)
        if final is None:
            continue
        rows = []  # a resumed arm keeps its earlier history in metrics.before_resume_<n>.csv
        for path in [*sorted((folder / "csv").glob("metrics.before_resume_*.csv")), folder / "csv" / "metrics.csv"]:
            if path.is_file():
                with open(path) as f:
                    rows += list(csv.DictReader(f))
        for row in rows:
            if row.get(f"val/{split}/mae"):
                writer.writerow([arm.group, arm.seed, int(row["step"]) + 1,
                                 *(f"{float(row[f'val/{split}/{k}']):.4f}" for k in METRICS), "val"])
        writer.writerow([arm.group, arm.seed, steps, *(f"{final[k]:.4f}" for k in METRICS), "test"])
    return buf.getvalue()


def main(description: str, build_arms: Callable[[argparse.Namespace], list[Arm]], *, split: str, label: str,
         steps: int, add_options: Callable[[argparse.ArgumentParser], None] | None = None,
         argv: Sequence[str] | None = None) -> None:
    """The study's command line: ``run | table | curves | list --out DIR [--only ARM ...]``.

    ``build_arms`` gets the parsed options (``out`` and whatever ``add_options`` added) and returns the
    arms in run order; ``split`` names the scored split in ``metrics.json`` and ``label`` heads its column.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("action", choices=["run", "table", "curves", "list"])
    parser.add_argument("--out", type=Path, required=True, help="folder of the study's runs")
    parser.add_argument("--only", nargs="*", default=None, help="arm names to run (default: all, in order)")
    if add_options is not None:
        add_options(parser)
    args = parser.parse_args(argv)
    arms = build_arms(args)
    if args.action == "list":
        for arm in arms:
            print(arm.name, " ".join(arm.args))
    elif args.action == "table":
        print(table(arms, args.out, split, label))
    elif args.action == "curves":
        print(curves(arms, args.out, split, steps), end="")
    else:
        os.environ.setdefault("WANDB_MODE", "offline")
        for arm in arms:
            if args.only is not None and arm.name not in args.only:
                continue
            if arm.skip:
                print(f"[study] {arm.name}: skipped ({arm.skip})", flush=True)
                continue
            code = run_arm(arm, args.out / arm.name)
            print(f"[study] {arm.name}: exit {code}", flush=True)
