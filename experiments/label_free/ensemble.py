"""Prediction ensembles of label-free models, scored on the 60-image TR-1 hold-out (study section 2i).

    DBD_DATA_ROOT=<folder holding CUHK/> python experiments/label_free/ensemble.py --work <scratch folder> \
        --out experiments/label_free/ensemble.json --ensemble NAME=FILE,FILE,... [--ensemble ...]

Each member file is run once by ``python -m dbd_lightning.predict inference=papers save_npy=true`` (the papers'
protocol, as eval's: the whole photo resized to the network's size, the map resized back; the raw float32
in-focus probability kept) on the hold-out photographs and the 10 sanity photographs. An ensemble's map is the
mean of its members' probabilities, written as ``.npy``; ``python -m dbd_lightning.eval`` then scores every
ensemble and every member from those saved maps (``+maps.<name>.root=``), so all rows are read the same way.
A soup (section 2h) averages the weights and scores the mean of its members; this asks whether averaging the
maps does better, which would make the ensemble a teacher worth distilling. Work in ``--work`` is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SPLITS = {"cuhk_tr1_val": "hold-out", "real_cuhk": "sanity CUHK (5)", "real_dut": "sanity DUT (5)"}


def photo_folders(work: Path) -> dict[str, Path]:
    """Folders of links to the photographs of each scored split (the hold-out: ``CUHK(split='tr1_val')``'s pairs)."""
    from dbd_lightning.data.benchmarks.cuhk import CUHK
    from dbd_lightning.data.real_mini import real_mini_folder

    root = Path(os.environ.get("DBD_DATA_ROOT", "data"))
    sources = {"cuhk_tr1_val": [image for image, _ in CUHK(root / "CUHK", split="tr1_val", holdout_seed=0).pairs]}
    sources.update({split: [image for image, _ in real_mini_folder(split).pairs] for split in ("real_cuhk", "real_dut")})
    folders = {}
    for split, images in sources.items():
        if not images:
            raise SystemExit(f"no photographs for {split}: is DBD_DATA_ROOT the folder holding CUHK/?")
        folder = work / "photos" / split
        folder.mkdir(parents=True, exist_ok=True)
        for image in images:
            link = folder / image.name
            if not link.exists():
                link.symlink_to(image.resolve())
        folders[split] = folder
    return folders


def source_name(member: Path) -> str:
    """A member's name in eval's table and its map folder's name (an eval key: no "-" or ".")."""
    return member.stem.replace("-", "_").replace(".", "_")


def predict(member: Path, folders: dict[str, Path], work: Path) -> Path:
    """``predict`` of one member on every split; returns its map folder (``<work>/maps/<stem>/<split>/*.npy``)."""
    out = work / "maps" / source_name(member)
    stamp = f"{member.resolve()} {member.stat().st_size} {member.stat().st_mtime_ns}\n"  # maps of this file only
    source = out / "source.txt"
    if source.is_file() and source.read_text() != stamp:
        raise SystemExit(f"{out} holds the maps of {source.read_text().split()[0]} as it was then, not of {member} now: "
                         "give another --work")
    out.mkdir(parents=True, exist_ok=True)
    source.write_text(stamp)
    for split, folder in folders.items():
        target = out / split
        if (target / "focus").is_dir() and len(list((target / "focus").glob("*.npy"))) == len(list(folder.iterdir())):
            continue
        code = subprocess.run([sys.executable, "-m", "dbd_lightning.predict", f"ckpt={member}", f"input={folder}",
                               f"output={target}", "inference=papers", "save_npy=true", "device=cpu",
                               "backend=torch"]).returncode
        if code:
            raise SystemExit(f"predict of {member} exited with {code} (its message is above); stopping")
    return out


def mean_maps(name: str, members: list[Path], work: Path, splits: list[str]) -> Path:
    """The ensemble ``name``: per photo, the mean in-focus probability of the members' saved maps."""
    out = work / "maps" / name
    for split in splits:
        target = out / split / "focus"
        target.mkdir(parents=True, exist_ok=True)
        for first in sorted((members[0] / split / "focus").glob("*.npy")):
            maps = [np.load(m / split / "focus" / first.name, allow_pickle=False) for m in members]
            np.save(target / first.name, np.mean(maps, axis=0).astype(np.float32))
    return out


def score(sources: dict[str, Path], work: Path) -> dict:
    """One ``eval`` of every source's saved maps on the hold-out and the sanity photographs."""
    folder = work / "eval"
    args = [sys.executable, "-m", "dbd_lightning.eval", "data=[cuhk_tr1,real_mini]", f"hydra.run.dir={folder}"]
    for name, root in sources.items():
        args += [f"+maps.{name}.root={root}", f"+maps.{name}.polarity=white_in_focus", f"+maps.{name}.suffixes=[.npy]",
                 *(f"+maps.{name}.dirs.{split}={root / split / 'focus'}" for split in SPLITS)]
    code = subprocess.run(args).returncode
    if code:
        raise SystemExit(f"eval exited with {code} (its message is above); stopping")
    return json.loads((folder / "results.json").read_text())["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ensemble", action="append", required=True, metavar="NAME=FILE,FILE,...")
    args = parser.parse_args()
    ensembles = {}
    for spec in args.ensemble:
        name, _, files = spec.partition("=")
        members = [Path(f) for f in files.split(",") if f]
        if not name.isidentifier() or len(members) < 2 or not all(m.is_file() for m in members):
            raise SystemExit(f"--ensemble {spec}: expected NAME=FILE,FILE,... (a name, two or more existing files)")
        ensembles[name] = members
    members = list(dict.fromkeys(m for ms in ensembles.values() for m in ms))  # each file once, in order
    by_name: dict[str, set[Path]] = {}
    for member in members:
        by_name.setdefault(source_name(member), set()).add(member.resolve())
    clash = sorted({name for name, files in by_name.items() if len(files) > 1} | (set(by_name) & set(ensembles)))
    if clash:
        raise SystemExit(f"--ensemble: {', '.join(clash)} names two different files, or a file and an ensemble (maps "
                         "are kept by name): rename one")
    folders = photo_folders(args.work)
    member_maps = {m: predict(m, folders, args.work) for m in members}
    sources = {source_name(m): root for m, root in member_maps.items()}
    for name, files in ensembles.items():
        sources[name] = mean_maps(name, [member_maps[m] for m in files], args.work, list(folders))
    metrics = score(sources, args.work)
    record = {"protocol": "maps saved by predict inference=papers save_npy=true, scored by eval from the saved maps; "
                          "D-DFFNet convention (MAE per image; F-beta 0.3 at 0.5; IoU pooled)",
              "ensembles": {name: [str(m) for m in ms] for name, ms in ensembles.items()},
              "scores": {name: {SPLITS[s]: {k: round(metrics[name][s][k], 4) for k in ("mae", "fbeta", "iou")}
                                for s in SPLITS if s in metrics.get(name, {})} for name in sources}}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["scores"], indent=1))


if __name__ == "__main__":
    main()
