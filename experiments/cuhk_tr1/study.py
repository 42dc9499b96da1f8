"""The CUHK TR-1 study at one short, equal budget: every arm trained the same way, scored the same way.

    DBD_DATA_ROOT=<folder holding CUHK/> python experiments/cuhk_tr1/study.py run --out <runs folder>
    python experiments/cuhk_tr1/study.py table --out <runs folder> > experiments/cuhk_tr1/study.md

Protocol (``COMMON``): 192 x 192 px, batch 8, 272 steps (4 epochs of the 544 training pairs), Adam
2e-4 with poly 0.9 stepped per step over the 272 steps, horizontal flips, colour jitter 0.1, the hold-out
scored after the last step (no epoch choice: ``test_ckpt=last``). Each arm changes one thing: the start
(synthetic release or ImageNet Lite0/1/2), the share of TR-1 (seeded subsets), the batches (real +
synthetic), the crops, or the stage (D-DFFNet stage 2 distilled from the same seed's stage-1 run and the
offline depth teacher). Seeds: ``seed=S data.subset_seed=S``.

``run`` trains the arms one after another (never two at once: the 2 cores), in the order of ``ARMS``;
an arm whose folder holds ``metrics.json`` is done, one with ``checkpoints/last.ckpt`` continues from it,
and a folder this script started that holds neither is started again. Stop it at any time.
``table`` prints the hold-out MAE / F / IoU of every finished arm, mean and range over seeds; ``curves``
writes every finished arm's validation curve and final scores as CSV.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

STEPS = 272  # 4 epochs of the 544 training pairs at batch 8
COMMON = [
    "experiment=dffnet_lite_cuhk",
    "logger=csv",
    "data.image_size=[192,192]",
    "trainer.max_epochs=-1",
    f"+trainer.max_steps={STEPS}",
    "model.scheduler_interval=step",
    f"model.scheduler.total_iters={STEPS}",
    "+trainer.val_check_interval=68",
    "trainer.check_val_every_n_epoch=null",
    "test_ckpt=last",
    "model.log_images=0",
]
STAGE2 = [  # replaces experiment=dffnet_lite_cuhk; the epoch-based beta schedule needs whole epochs
    "experiment=ddffnet_cuhk_cpu_stage2",
    "trainer.max_epochs=4",
    "callbacks.distillation.switch_epoch=1",  # the paper's 15 of 75 epochs, at 4 epochs
]
IMAGENET = "model.net.init_ckpt=null"
STARTED = ".study_started"


@dataclass
class Arm:
    """One training: its name (= folder), seed and overrides on top of ``COMMON``."""

    name: str
    seed: int
    overrides: list[str] = field(default_factory=list)
    stage2_of: str | None = None  # the stage-1 arm whose checkpoint is the defocus teacher

    def command(self, out: Path, depth_teacher: str) -> list[str]:
        args = list(COMMON)
        if self.stage2_of:
            args = [a for a in args if not a.startswith(("experiment=", "trainer.max_epochs="))] + STAGE2 + [
                f"teacher.defocus.ckpt={out / self.stage2_of / 'checkpoints' / 'last.ckpt'}",
                f"teacher.depth.ckpt={depth_teacher}",
            ]
        return args + [f"seed={self.seed}", f"data.subset_seed={self.seed}", *self.overrides,
                       f"hydra.run.dir={out / self.name}"]


def _arms() -> list[Arm]:
    def s1(init: str, frac: float, seed: int, tag: str = "", extra: tuple[str, ...] = ()) -> Arm:
        """A stage-1 arm; ``init``: ``synth`` (zoo:dffnet_lite0_synth) or ``imagenet_lite0|1|2``."""
        over = [] if init == "synth" else [IMAGENET, f"model.net.encoder=efficientnet_{init.split('_')[1]}"]
        name = f"s1_{init}_f{frac:g}" + (f"_{tag}" if tag else "") + f"_s{seed}"
        return Arm(name, seed, over + [f"data.train_fraction={frac}", *extra])

    arms: list[Arm] = []
    for seed in (0, 1):  # stage 1 vs stage 2 and the two starts, at 100 %
        base = s1("synth", 1.0, seed)
        arms += [base, Arm(f"s2_synth_f1_s{seed}", seed, [], stage2_of=base.name), s1("imagenet_lite0", 1.0, seed)]
    for frac in (0.1, 0.3):  # label efficiency
        for seed in (0, 1):
            arms += [s1("synth", frac, seed), s1("imagenet_lite0", frac, seed)]
    for seed in (0, 1):  # encoders, real + synthetic batches, crops
        arms += [
            s1("imagenet_lite2", 1.0, seed),
            s1("imagenet_lite1", 1.0, seed),
            s1("synth", 1.0, seed, "mixed", ("data=cuhk_tr1_mixed", "data.render_size=[192,192]")),
            s1("synth", 1.0, seed, "crops", ("+data.datamodule.train_transform.crop_scale=[0.5,1.0]",)),
        ]
    return arms


ARMS = _arms()


def _run(arm: Arm, out: Path, depth_teacher: str) -> int:
    folder = out / arm.name
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
        (folder / STARTED).write_text(" ".join(arm.command(out, depth_teacher)) + "\n")
        args = arm.command(out, depth_teacher)
    print(f"[study] {arm.name}: {' '.join(args)}", flush=True)
    with open(folder / "study.log", "a") as log:
        return subprocess.call([sys.executable, "-m", "dbd_lightning.train", *args], stdout=log,
                               stderr=subprocess.STDOUT)


def _scores(folder: Path) -> dict[str, float] | None:
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    m = json.loads(path.read_text())
    return {k: m[f"test/cuhk_tr1_val/{k}"] for k in ("mae", "fbeta", "iou")}


def _table(out: Path) -> str:
    groups: dict[str, list[dict[str, float]]] = {}
    for arm in ARMS:
        scores = _scores(out / arm.name)
        if scores is not None:
            groups.setdefault(arm.name.rsplit("_s", 1)[0], []).append(scores)
    lines = ["| arm | seeds | hold-out MAE | F-beta | IoU |", "|---|---|---|---|---|"]
    for key, runs in groups.items():
        cells = []
        for metric in ("mae", "fbeta", "iou"):
            vals = [r[metric] for r in runs]
            mean = statistics.fmean(vals)
            cells.append(f"{mean:.3f}" + (f" ({min(vals):.3f}-{max(vals):.3f})" if len(vals) > 1 else ""))
        lines.append(f"| {key} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _curves(out: Path) -> str:
    """CSV of every finished arm's hold-out curve (validation every 68 steps) and its final test scores."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["arm", "seed", "step", "mae", "fbeta", "iou", "split"])
    for arm in ARMS:
        folder = out / arm.name
        scores = _scores(folder)
        if scores is None:
            continue
        rows = []  # a resumed arm keeps its earlier history in metrics.before_resume_<n>.csv
        for path in [*sorted((folder / "csv").glob("metrics.before_resume_*.csv")), folder / "csv" / "metrics.csv"]:
            with open(path) as f:
                rows += list(csv.DictReader(f))
        for row in rows:
            if row.get("val/cuhk_tr1_val/mae"):
                writer.writerow([arm.name.rsplit("_s", 1)[0], arm.seed, int(row["step"]) + 1,
                                 *(f"{float(row[f'val/cuhk_tr1_val/{k}']):.4f}" for k in ("mae", "fbeta", "iou")),
                                 "val"])
        writer.writerow([arm.name.rsplit("_s", 1)[0], arm.seed, STEPS,
                         *(f"{scores[k]:.4f}" for k in ("mae", "fbeta", "iou")), "test"])
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["run", "table", "curves", "list"])
    parser.add_argument("--out", type=Path, required=True, help="folder of the study's runs")
    parser.add_argument("--depth-teacher", default=None,
                        help="the offline depth teacher (run folder or .ckpt) of the stage-2 arms")
    parser.add_argument("--only", nargs="*", default=None, help="arm names to run (default: all, in order)")
    args = parser.parse_args()
    if args.action == "list":
        for arm in ARMS:
            print(arm.name, " ".join(arm.command(args.out, args.depth_teacher or "<depth teacher>")))
        return
    if args.action == "table":
        print(_table(args.out))
        return
    if args.action == "curves":
        print(_curves(args.out), end="")
        return
    os.environ.setdefault("WANDB_MODE", "offline")
    for arm in ARMS:
        if args.only is not None and arm.name not in args.only:
            continue
        if arm.stage2_of and not args.depth_teacher:
            print(f"[study] {arm.name}: skipped (no --depth-teacher)", flush=True)
            continue
        code = _run(arm, args.out, args.depth_teacher or "")
        print(f"[study] {arm.name}: exit {code}", flush=True)


if __name__ == "__main__":
    main()
