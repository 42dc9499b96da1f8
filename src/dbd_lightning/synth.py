"""Write a synthetic thin-lens defocus dataset to disk.

Usage (``key=value`` arguments, Hydra-like)::

    python -m dbd_lightning.synth out=DIR n=N seed=S preset=shallow size=320 [overwrite=true]
        [progress=false] [start=0] [<RenderConfig field>=<value> ...]

``size`` is an int (square) or ``HxW`` (e.g. ``240x320``). Any
:class:`~dbd_lightning.data.synthetic.RenderConfig` field may be overridden, e.g.
``f_number=[1.4,2.8]``, ``psf=gaussian``, ``jpeg_quality=null``,
``source_dir=/photos``. See :mod:`dbd_lightning.data.synthetic.writer` for the layout.

synth writes only into a new or empty folder, or its own earlier one: ``overwrite=true``
replaces exactly the files its ``meta.json`` lists (never a user's file; a folder synth
did not write is refused). After a full disk, the same command resumes the folder.
"""

from __future__ import annotations

from . import _env  # noqa: F401  (first: the environment defaults, before any library import)

# isort: split

import ast
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from .utils.cli import argv_or_usage
from .utils.errors import UserError, handle_user_errors

USAGE = __doc__ or ""
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"{key} must be true/false, got {value!r}")


def _parse_value(value: str) -> Any:
    v = value.strip()
    if v.lower() in {"null", "none", "~"}:
        return None
    if v.lower() in _TRUE - {"1"}:
        return True
    if v.lower() in _FALSE - {"0"}:
        return False
    try:
        return ast.literal_eval(v)
    except (ValueError, SyntaxError):
        pass
    if "," in v:
        return tuple(_parse_value(p) for p in v.split(","))
    return v


def _parse_size(value: str) -> int | tuple[int, int]:
    v = value.strip().lower()
    try:
        if "x" in v:
            h, w = v.split("x")
            return int(h), int(w)
        return int(v)
    except ValueError:
        raise ValueError(f"size must be an int or HxW, got {value!r}") from None


def parse_args(argv: Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` arguments (a leading ``--`` on keys is accepted)."""
    from .data.synthetic.config import RenderConfig

    fields = {f.name for f in dataclasses.fields(RenderConfig)} - {"size", "name"}
    args: dict[str, Any] = {
        "n": 100,
        "seed": 0,
        "preset": "random",
        "size": 320,
        "overwrite": False,
        "progress": True,
        "start": 0,
    }
    overrides: dict[str, Any] = {}
    for arg in argv:
        if "=" not in arg:
            raise ValueError(f"expected key=value, got {arg!r}")
        key, value = arg.split("=", 1)
        key = key.lstrip("-").lstrip("+").replace("-", "_")
        if key == "out":
            args["out"] = value
        elif key in ("n", "seed", "start"):
            try:
                args[key] = int(value)
            except ValueError:
                raise ValueError(f"{key} must be an integer, got {value!r}") from None
        elif key == "preset":
            args["preset"] = value
        elif key == "size":
            args["size"] = _parse_size(value)
        elif key in ("overwrite", "progress"):
            args[key] = _parse_bool(key, value)
        elif key in fields:
            overrides[key] = _parse_value(value)
        else:
            valid = ["out", "n", "seed", "preset", "size", "overwrite", "progress", "start", *sorted(fields)]
            raise ValueError(f"unknown argument {key!r}; valid: {', '.join(valid)}")
    if "out" not in args:
        raise ValueError("missing required argument out=DIR")
    args["overrides"] = overrides
    return args


@handle_user_errors(log_file=False)
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m dbd_lightning.synth`` / ``dbd-synth``; returns the exit code."""
    argv, code = argv_or_usage(argv, USAGE)
    if code is not None:
        return code
    from .data.synthetic.writer import write_dataset

    try:
        args = parse_args(argv)
        out = write_dataset(
            args["out"],
            n=args["n"],
            seed=args["seed"],
            preset=args["preset"],
            size=args["size"],
            overwrite=args["overwrite"],
            progress=args["progress"],
            start=args["start"],
            **args["overrides"],
        )
    except (UserError, ValueError, FileExistsError, NotADirectoryError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args['n']} samples to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
