"""TENT on the unlabeled TR-1 photographs: learning rate x passes x seed, scored on the 60-image hold-out.

    DBD_DATA_ROOT=<folder holding CUHK/> python experiments/label_free/tent.py --work <scratch folder> \
        --out experiments/label_free/tent.json [--settings 1e-3:1:0 3e-3:1:1 1e-2:1:0:0.4 3e-3:1:0:1:0.05 ...]

Each setting ``LR:PASSES:SEED[:MARGIN[:RHO]]`` is one ``python -m dbd_lightning.adapt method=tent`` of ``--ckpt`` on the
CUHK image folder without the hold-out and TE-1 (``exclude_cuhk_tr1_holdout=60``: 544 photos, batch 8, so
68 Adam steps per pass; no mask is read), then ``python -m dbd_lightning.eval data=[cuhk_tr1,real_mini]``
of the adapted file (``MARGIN``: ``tent_entropy_margin``, the reliable-pixel filter, 1 = none; ``RHO``: ``tent_sam_rho``, SAR's
sharpness-aware step): the hold-out, and the 10 sanity photographs read after the choice. Work already in
``--work`` (an adapted file, an eval folder) is reused, so an interrupted grid continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from study_driver import scores as split_scores  # noqa: E402

#: learning rate : passes : seed (the grid of experiments/label_free/README.md, section 2c)
SETTINGS = ["1e-4:1:0", "1e-4:1:1", "1e-3:1:0", "1e-3:1:1", "3e-3:1:0", "3e-3:1:1", "3e-3:1:2", "3e-3:1:3",
            "1e-2:1:0", "1e-2:1:1", "1e-2:1:2", "1e-2:1:3", "1e-3:3:0", "1e-3:3:1"]
SPLITS = {"cuhk_tr1_val": "hold-out", "real_cuhk": "sanity CUHK (5)", "real_dut": "sanity DUT (5)"}
METRICS = "D-DFFNet convention (MAE per image; F-beta 0.3 at 0.5; IoU pooled)"


def run_setting(setting: str, ckpt: str, photos: Path, work: Path, tag: str) -> dict:
    parts = setting.split(":")
    if not 3 <= len(parts) <= 5:
        raise SystemExit(f"--settings {setting}: expected LR:PASSES:SEED[:MARGIN[:RHO]]")
    lr, passes, seed, *extra = parts
    margin, rho = (extra + [None, None])[:2]
    suffix = (f"_m{margin}" if margin is not None else "") + (f"_r{rho}" if rho is not None else "")
    out = work / f"{tag}_tent_lr{lr}_e{passes}_s{seed}{suffix}.safetensors"
    fresh = not out.is_file()
    if not fresh:
        reused_from(out, ckpt)
    else:
        run([sys.executable, "-m", "dbd_lightning.adapt", f"ckpt={ckpt}", f"photos={photos}", f"out={out}",
             "method=tent", "exclude_cuhk_tr1_holdout=60", f"tent_lr={lr}", f"tent_epochs={passes}",
             f"seed={seed}", "batch=8", *([f"tent_entropy_margin={margin}"] if margin is not None else []),
             *([f"tent_sam_rho={rho}"] if rho is not None else [])])
    return evaluate(out, work / "eval" / out.stem, fresh)


def reused_from(adapted: Path, ckpt: str) -> None:
    """Stop when an adapted file already in ``--work`` was made from another checkpoint than ``ckpt`` (its
    record's ``adapted_from``, and ``source_checkpoint``: the file a run folder resolved to then): its scores
    would be filed under the wrong model."""
    from safetensors import safe_open

    try:
        with safe_open(str(adapted), "np") as handle:
            record = json.loads(handle.metadata()["dbd_lightning"])
    except Exception as exc:  # noqa: BLE001 - any unreadable file is refused the same way
        raise SystemExit(f"{adapted} is in --work but is not a readable adapted file ({exc}); move it away") from None
    source = record.get("adapted_from")
    if source != ckpt:
        raise SystemExit(f"{adapted} is in --work but was adapted from {source}, not --ckpt {ckpt}: give another "
                         "--tag or --work")
    if "source_checkpoint" in record:  # a run folder names its best checkpoint, which moves while the run trains on
        from dbd_lightning.runs.resolver import resolve_checkpoint

        now = resolve_checkpoint(ckpt).ckpt.name
        if record["source_checkpoint"] != now:
            raise SystemExit(f"{adapted} is in --work but was adapted from {ckpt}'s {record['source_checkpoint']}, and "
                             f"--ckpt {ckpt} now resolves to {now}: give another --tag or --work")


def run(command: list[str]) -> None:
    """Run one ``python -m dbd_lightning.<command>``; its failure (already explained on stderr) stops the script."""
    code = subprocess.run(command).returncode
    if code:
        raise SystemExit(f"{' '.join(command[1:3])} exited with {code} (its message is above); stopping")


def evaluate(adapted: Path, folder: Path, fresh: bool) -> dict:
    """``python -m dbd_lightning.eval`` of ``adapted`` on the hold-out and the sanity photos into ``folder``
    (reused when its ``metrics.json`` is there: test/<split>/<metric>, as a training run's); the scores of
    :data:`SPLITS`, rounded. ``fresh``: ``adapted`` was just written, so scores already in ``folder`` are another
    file's: refused."""
    if fresh and folder.exists():
        raise SystemExit(f"{folder} holds the scores of an earlier {adapted.name}, which was just rebuilt: move the "
                         "folder away, then run again")
    if split_scores(folder, next(iter(SPLITS))) is None:
        run([sys.executable, "-m", "dbd_lightning.eval", f"ckpt={adapted}", "data=[cuhk_tr1,real_mini]",
             f"hydra.run.dir={folder}"])
    return {split: {k: round(v, 4) for k, v in split_scores(folder, split).items()} for split in SPLITS}


def parse_common(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, Path]:
    """Add ``--photos`` / ``--work`` / ``--out`` (what every adaptation script here takes), parse, and return
    the arguments with the CUHK image folder (``--photos`` or ``$DBD_DATA_ROOT/CUHK/image``)."""
    parser.add_argument("--photos", type=Path, default=None, help="CUHK image folder (default: $DBD_DATA_ROOT/CUHK/image)")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSON of the scores (written at the end)")
    args = parser.parse_args()
    return args, args.photos or Path(os.environ.get("DBD_DATA_ROOT", "data")) / "CUHK" / "image"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", default="zoo:dffnet_lite0_synth")
    parser.add_argument("--tag", default="synth", help="prefix of the adapted files in --work")
    parser.add_argument("--settings", nargs="+", default=SETTINGS, help="LR:PASSES:SEED[:MARGIN[:RHO]] each")
    args, photos = parse_common(parser)
    args.work.mkdir(parents=True, exist_ok=True)
    scores = {s: run_setting(s, args.ckpt, photos, args.work, args.tag) for s in args.settings}
    record = {"ckpt": args.ckpt, "photos": "CUHK TR-1 images without the 60-image hold-out and TE-1 (544)",
              "batch": 8, "metrics": METRICS,
              "splits": SPLITS, "scores": scores}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    for setting, row in scores.items():
        print(setting, *(f"{split}: {m['mae']:.4f} / {m['fbeta']:.4f} / {m['iou']:.4f}" for split, m in row.items()))


if __name__ == "__main__":
    main()
