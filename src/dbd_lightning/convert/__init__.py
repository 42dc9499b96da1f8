"""Converters from the authors' released weights to this suite's checkpoints.

    python -m dbd_lightning.convert FAMILY ...      (``python -m dbd_lightning.convert -h`` lists them)

Each paper's converter is ``models/<paper>/convert.py`` with a ``main(argv, kind)`` CLI, declared
in its folder (``models/<paper>/__init__.py``: ``PAPER.converters``); ``FAMILIES`` is read from there.
Every converter loads with ``torch.load(..., weights_only=True)`` (or reads plain arrays) and never
executes anything from the source files. Bad input (a missing, empty, corrupt or code-carrying file, our
own checkpoint given as an authors' file, a destination the converter did not write) is
``error: <message naming the file and the fix>``, exit 2, no traceback unless ``HYDRA_FULL_ERROR=1``
(:mod:`dbd_lightning.models.conversion.errors`); outputs are written atomically
(:mod:`dbd_lightning.models.conversion.output`).
"""

from __future__ import annotations

from .. import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import importlib
import sys

from ..models import registry
from ..models.conversion.errors import input_errors
from ..utils.errors import handle_user_errors


def families() -> dict[str, str]:
    """Family name -> module holding its ``main(argv, kind)`` (imported only when that family is asked for)."""
    return registry.converters()


FAMILIES: dict[str, str] = families()


@handle_user_errors(log_file=False)
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in (known := families()):
        stream = sys.stdout if argv and argv[0] in {"-h", "--help"} else sys.stderr
        if argv and argv[0] not in {"-h", "--help"}:
            print(f"unknown family {argv[0]!r}", file=stream)
        print(f"usage: python -m dbd_lightning.convert {{{','.join(sorted(known))}}} ...\n"
              f"{__doc__.splitlines()[0]}", file=stream)
        return 0 if stream is sys.stdout else 2
    module = importlib.import_module(known[argv[0]])
    with input_errors(argv[0]):
        return module.main(argv[1:], kind=argv[0])


__all__ = ["FAMILIES", "main"]
