"""``python -m dbd_lightning.zoo``: the released model names, one per line, the recommended one first.

``python -m dbd_lightning.zoo --card NAME`` prints a model's card.
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import argparse
import sys

from .registry import resolve_zoo, zoo_names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dbd_lightning.zoo", description=__doc__.splitlines()[0])
    ap.add_argument("--card", metavar="NAME", help="print the model card of NAME")
    args = ap.parse_args(argv)
    if args.card:
        try:
            entry = resolve_zoo(args.card)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(entry.config_file.read_text())
        return 0
    for name in zoo_names():
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
