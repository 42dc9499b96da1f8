"""Weight-average TENT files of one start (a "soup" of photo orders), then AdaBN, scored on the 60-image hold-out.

    DBD_DATA_ROOT=<folder holding CUHK/> python experiments/label_free/soup.py --work <scratch folder> \
        --out experiments/label_free/soup.json --soup NAME=FILE,FILE,... [--soup ...]

Each ``--soup`` averages the floating-point tensors of released-style files written by ``adapt`` from one
start (``tent.py``'s files: the same convolutions, different BatchNorm scales and shifts), keeps the first
file's record, and re-estimates the BatchNorm statistics for the averaged scales on the unlabeled CUHK images
without the hold-out and TE-1 (``python -m dbd_lightning.adapt method=adabn exclude_cuhk_tr1_holdout=60``);
then ``python -m dbd_lightning.eval data=[cuhk_tr1,real_mini]``. The average is a plain mean, as the uniform
soup of Wortsman et al. (ICML 2022): it asks whether the photo order that TENT's seed fixes is noise that
averaging removes (a soup at least as good as the best file) or only a spread around the mean.
Work already in ``--work`` is reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tent import METRICS, SPLITS, evaluate, parse_common, run  # noqa: E402


def average(files: list[Path], out: Path) -> None:
    """The mean of each floating-point tensor over ``files`` (computed in float32, stored in the files'
    dtype); integer tensors (BatchNorm batch counters) and the record are the first file's."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    if len(set(map(Path.resolve, files))) < len(files):
        raise SystemExit(f"--soup: a file is given twice among {', '.join(map(str, files))}")
    try:
        states = [load_file(str(f)) for f in files]
    except Exception as exc:  # noqa: BLE001 - a missing or damaged file is refused the same way
        raise SystemExit(f"--soup: cannot read {', '.join(map(str, files))}: {exc}") from None
    keys = set(states[0])
    for f, state in zip(files, states, strict=True):
        if set(state) != keys:
            raise SystemExit(f"--soup: {f} does not hold the tensors of {files[0]}; average files of one start")
    with safe_open(str(files[0]), "pt") as handle:
        record = handle.metadata()
    mean = {k: ((sum(s[k].float() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v)
            for k, v in states[0].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(mean, str(out), metadata=record)


def run_soup(name: str, files: list[Path], photos: Path, work: Path) -> dict:
    mixed, adapted = work / f"{name}_mean.safetensors", work / f"{name}.safetensors"
    listed = work / f"{name}.files.json"  # what the soup in --work was made of, so a reuse is checked
    names = [str(f.resolve()) for f in files]
    fresh = not adapted.is_file()
    if not fresh:
        if not listed.is_file():
            raise SystemExit(f"{adapted} is in --work with no record of the files it was made from ({listed}); give "
                             "another soup name or --work")
        if json.loads(listed.read_text()) != names:
            raise SystemExit(f"{adapted} is in --work but was made of other files ({listed}); give another soup "
                             "name or --work")
    else:
        average(files, mixed)
        run([sys.executable, "-m", "dbd_lightning.adapt", f"ckpt={mixed}", f"photos={photos}", f"out={adapted}",
             "method=adabn", "exclude_cuhk_tr1_holdout=60"])
        listed.write_text(json.dumps(names) + "\n")
    return evaluate(adapted, work / "eval" / name, fresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--soup", nargs="+", required=True, help="NAME=FILE,FILE,... each")
    args, photos = parse_common(parser)
    soups = {}
    for item in args.soup:
        name, sep, files = item.partition("=")
        if not sep or len(files.split(",")) < 2:
            raise SystemExit(f"--soup {item}: expected NAME=FILE,FILE[,...] (two files or more)")
        soups[name] = [Path(f) for f in files.split(",")]
    scores = {name: {"files": [f.name for f in files], **run_soup(name, files, photos, args.work)}
              for name, files in soups.items()}
    record = {"photos": "CUHK TR-1 images without the 60-image hold-out and TE-1 (544), for AdaBN after averaging",
              "metrics": METRICS,
              "splits": SPLITS, "scores": scores}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    for name, row in scores.items():
        print(name, *(f"{split}: {m['mae']:.4f} / {m['fbeta']:.4f} / {m['iou']:.4f}"
                      for split, m in row.items() if split != "files"))


if __name__ == "__main__":
    main()
