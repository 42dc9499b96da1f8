"""What the ``key=value`` commands outside Hydra (``synth``, ``adapt``) share on their command line."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def argv_or_usage(argv: Sequence[str] | None, usage: str) -> tuple[list[str], int | None]:
    """The command line (``sys.argv[1:]`` when ``argv`` is None) and, when it asks for help (``-h``, ``--help``,
    ``help``) or is empty, the exit code after printing ``usage`` (0 for help, 2 for nothing given); else None."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or any(a in ("-h", "--help", "help") for a in args):
        print(usage)
        return args, 0 if args else 2
    return args, None
