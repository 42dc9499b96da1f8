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


class ConfigError(UserError, ValueError):
    """A config value (``key=value``) that cannot work; the message names the key."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be used (unreadable, empty, another model's config)."""


class MemoryPreflightError(UserError, MemoryError):
    """The composition does not fit the machine's memory; the message gives a batch size that does."""


#: Hydra's errors about the command line / config tree (unknown group option, bad override syntax, unknown key)
HYDRA_CONFIG_ERRORS = ("ConfigCompositionException", "MissingConfigException", "OverrideParseException")


def user_error_in(exc: BaseException | None) -> UserError | None:
    """``exc`` itself, the :class:`UserError` that caused a Hydra ``InstantiationException``, or a
    Hydra config / override error (as a :class:`ConfigError` with Hydra's message)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, UserError):
            return exc
        if type(exc).__name__ in HYDRA_CONFIG_ERRORS and type(exc).__module__.startswith("hydra"):
            error = ConfigError(str(exc).strip() or type(exc).__name__)
            error.__cause__ = exc
            return error
        if type(exc).__name__ != "InstantiationException":
            return None
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def hydra_log_file() -> Path | None:
    """The running Hydra job's log file (``<run folder>/<job name>.log``, e.g. ``train.log``), if any."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return None
        hc = HydraConfig.get()
        return Path(str(hc.runtime.output_dir)) / f"{hc.job.name}.log"
    except Exception:  # no Hydra, or a config without the runtime node
        return None


def full_error_requested() -> bool:
    """``HYDRA_FULL_ERROR=1``: show tracebacks instead of one-line messages."""
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def format_user_error(exc: BaseException) -> str:
    """``error: <message>``: one readable paragraph (never an exception repr with literal ``\\n``)."""
    message = exc.message if isinstance(exc, UserError) else str(exc)
    return f"error: {message.strip()}"


def append_to_log(log_file: str | Path | None, text: str, level: str = "ERROR") -> None:
    """Append ``text`` to ``log_file`` if its folder already exists (never creates a run folder)."""
    if not log_file or log_file is True:
        return
    path = Path(log_file)
    if not path.parent.is_dir():
        return
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with contextlib.suppress(OSError), path.open("a", encoding="utf-8") as fh:
        fh.write(f"[{stamp}][dbd_lightning][{level}] - {text}\n")


class handle_user_errors(contextlib.ContextDecorator):  # noqa: N801 (used like a function)
    """Context manager / decorator: a :class:`UserError` inside becomes ``error: ...`` + exit 2.

    ``log_file`` (a path, or a callable returning one, evaluated when the error
    happens; ``None``: the running Hydra job's log, ``False``: none) also receives the message when its folder exists, e.g. the run's
    ``train.log`` (:func:`hydra_log_file` inside a Hydra job). A Hydra ``InstantiationException``
    caused by a user error counts as that error (no wrapper repr). With ``HYDRA_FULL_ERROR=1`` the exception propagates (traceback).
    """

    def __init__(self, log_file: Path | str | None | bool = None) -> None:
        self.log_file = log_file

    def __enter__(self) -> handle_user_errors:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        error = user_error_in(exc)
        if error is None:
            return False
        text = format_user_error(error)
        log_file = self.log_file() if callable(self.log_file) else self.log_file
        if log_file is None:
            log_file = hydra_log_file()
        append_to_log(log_file, text)
        if full_error_requested():
            return False
        sys.stdout.flush()
        print(text, file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USER_ERROR)
