"""Converters from the authors' released weights to this suite's checkpoints.

    python -m dbd_lightning.convert FAMILY ...      (``python -m dbd_lightning.convert -h`` lists them)

Each family lives in its own module with a ``main(argv, kind)`` CLI; register it in
``FAMILIES`` below. Every converter loads with ``torch.load(..., weights_only=True)`` (or
reads plain arrays) and never executes anything from the source files.
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import importlib
import sys

from .ddffnet import convert_dffnet_key, convert_pdnet_key, convert_state, load_authors_state

# family name -> module (relative to this package) holding its ``main(argv, kind)``
FAMILIES: dict[str, str] = {
    "dd": ".dd",
    "ddffnet": ".ddffnet",
    "dffnet": ".ddffnet",
    "karaali": ".karaali",
    "pdnet": ".ddffnet",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in FAMILIES:
        stream = sys.stdout if argv and argv[0] in {"-h", "--help"} else sys.stderr
        if argv and argv[0] not in {"-h", "--help"}:
            print(f"unknown family {argv[0]!r}", file=stream)
        print(f"usage: python -m dbd_lightning.convert {{{','.join(sorted(FAMILIES))}}} ...\n"
              f"{__doc__.splitlines()[0]}", file=stream)
        return 0 if stream is sys.stdout else 2
    module = importlib.import_module(FAMILIES[argv[0]], __name__)
    return module.main(argv[1:], kind=argv[0])


__all__ = ["FAMILIES", "convert_dffnet_key", "convert_pdnet_key", "convert_state", "load_authors_state", "main"]
