"""``python -m dbd_lightning.zoo``: the released models, one per line with their training data, the recommended first.

``python -m dbd_lightning.zoo --card NAME`` prints a model's card; ``--build-graphs`` (after a release)
writes the ONNX graph shipped beside each model (:mod:`.graphs`).
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import argparse
import sys

from ..runs.released import resolve_zoo, training_data, zoo_names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dbd_lightning.zoo", description=__doc__.splitlines()[0])
    ap.add_argument("--card", metavar="NAME", help="print the model card of NAME")
    ap.add_argument("--build-graphs", action="store_true",
                    help="export and check the ONNX graph shipped beside each released model (needs onnx)")
    args = ap.parse_args(argv)
    if args.build_graphs:
        from .graphs import build_released_graph

        for name in zoo_names():
            print(f"{name}: {build_released_graph(resolve_zoo(name))}")
        return 0
    if args.card:
        try:
            entry = resolve_zoo(args.card)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(entry.config_file.read_text())
        return 0
    names = zoo_names()
    width = max((len(n) for n in names), default=0)
    for name in names:
        print(f"{name:<{width}}  trained on: {training_data(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
