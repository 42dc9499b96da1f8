"""One error style for every entry point (train, eval, predict, export, synth, data.check, data.prepare).

A *user error* is anything the user can fix: a bad config value, missing or
broken data, an unusable checkpoint, an unwritable folder, a batch that does not
fit in memory. It is raised as :class:`UserError` (or a subclass) with a short
message that names the file or config key and the fix. :func:`handle_user_errors`
turns it into::

    error: <message>

on stderr and exit status 2, appends the same line to the run's log file when
one is given and its folder already exists, and shows the traceback only when
``HYDRA_FULL_ERROR=1`` (then the exception propagates unchanged).

Every other exception is a bug and propagates with its traceback.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sys
from pathlib import Path

#: exit status of a user error (argparse and Hydra's config errors use 2 as well)
EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error the user can fix; ``message`` names the file / key and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return self.message


def full_error_requested() -> bool:
    """``HYDRA_FULL_ERROR=1``: show tracebacks instead of one-line messages."""
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def format_user_error(exc: BaseException) -> str:
    """``error: <message>``: one readable paragraph (never an exception repr with literal ``\\n``)."""
    message = exc.message if isinstance(exc, UserError) else str(exc)
    return f"error: {message.strip()}"


def append_to_log(log_file: str | Path | None, text: str) -> None:
    """Append ``text`` to ``log_file`` if its folder already exists (never creates a run folder)."""
    if not log_file:
        return
    path = Path(log_file)
    if not path.parent.is_dir():
        return
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with contextlib.suppress(OSError), path.open("a", encoding="utf-8") as fh:
        fh.write(f"[{stamp}][dbd_lightning][ERROR] - {text}\n")


class handle_user_errors(contextlib.ContextDecorator):  # noqa: N801 (used like a function)
    """Context manager / decorator: a :class:`UserError` inside becomes ``error: ...`` + exit 2.

    ``log_file`` (a path, or a callable returning one, evaluated when the error
    happens) also receives the message when its folder exists, e.g. the run's
    ``train.log``. With ``HYDRA_FULL_ERROR=1`` the exception propagates (traceback).
    """

    def __init__(self, log_file: Path | str | None = None) -> None:
        self.log_file = log_file

    def __enter__(self) -> handle_user_errors:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, UserError):
            return False
        text = format_user_error(exc)
        log_file = self.log_file() if callable(self.log_file) else self.log_file
        append_to_log(log_file, text)
        if full_error_requested():
            return False
        sys.stdout.flush()
        print(text, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USER_ERROR)
