"""Ctrl-C (SIGINT) and SIGTERM during a train job: stop cleanly and say how to continue.

Without this, Lightning caught Ctrl-C, printed ``Detected KeyboardInterrupt, attempting graceful
shutdown ...`` and exited 1; a SIGTERM during fit ended the process with status 0 (Lightning's
``SIGTERMException`` is a ``SystemExit`` without a code) and one before fit killed it outright.
Nothing reached ``train.log`` and no resume command was shown.

:class:`handle_interrupts` (around one train job, :mod:`dbd_lightning.train`) installs handlers for
both signals that raise :class:`Interrupted`, a ``KeyboardInterrupt`` (so Lightning runs its graceful
shutdown for SIGTERM as well), and ends the job with one line on stderr, also appended to the run's
``train.log``: what was interrupted and the exact command that continues it. The exit status is
``128 + signal number`` (130 for SIGINT, 143 for SIGTERM), the shell's convention for a process ended by
a signal: status 2 is kept for user errors (:mod:`.errors`) and 1 for crashes. A signal sent to the whole
process group also ends the DataLoader's workers; when the job then fails with another error (the
loader's "worker is killed by signal"), the signal received is still what ended it.

:func:`deferred_interrupts` marks a section that a signal must not split (the epoch-end checkpoint
saves, :mod:`dbd_lightning.callbacks.checkpoint`): a signal arriving inside is raised when it ends.
Outside :class:`handle_interrupts` (library use, tests) nothing is installed and the section is a no-op.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import append_to_log

__all__ = ["EXIT_STATUS", "Interrupted", "deferred_interrupts", "handle_interrupts"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: exit status of a job ended by each signal (128 + signal number)
EXIT_STATUS = {int(s): 128 + int(s) for s in SIGNALS}


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class _State:
    installed = False
    received: int | None = None  # the first signal received while installed
    depth = 0  # nesting of deferred_interrupts sections
    pending: int | None = None  # a signal that arrived inside such a section


def _on_signal(signum: int, frame) -> None:
    if _State.received is None:
        _State.received = int(signum)
    if _State.depth:
        _State.pending = int(signum)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block to its end even when SIGINT / SIGTERM arrives inside; raise :class:`Interrupted` after it."""
    if not _State.installed:
        yield
        return
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
    if _State.depth == 0 and _State.pending is not None:
        signum, _State.pending = _State.pending, None
        raise Interrupted(signum)


def _signal_of(exc: BaseException) -> int | None:
    """The signal that ended the job with ``exc``: the one recorded, else what Lightning turned it into."""
    if _State.received is not None:
        return _State.received
    if isinstance(exc, Interrupted):
        return exc.signum
    if isinstance(exc, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt):
        return int(signal.SIGINT)  # Lightning answers Ctrl-C with sys.exit(1)
    if type(exc).__name__ == "SIGTERMException":
        return int(signal.SIGTERM)
    return None


class handle_interrupts(contextlib.ContextDecorator):  # noqa: N801 (used like handle_user_errors)
    """Turn SIGINT / SIGTERM inside the block into one line + exit ``128 + signal`` (module docstring).

    ``advice`` (called after the interruption) returns the rest of the line, e.g. the resume command;
    ``log_file`` (a path or a callable returning one, evaluated then) also receives the line.
    ``show`` False (a DDP rank other than 0) exits with the same status without printing.
    """

    def __init__(self, advice: Callable[[], str], log_file: Callable[[], Path | None] | Path | None = None,
                 show: bool = True) -> None:
        self.advice, self.log_file, self.show = advice, log_file, show
        self._previous: dict[int, object] = {}
        self._owner = False

    def __enter__(self) -> handle_interrupts:
        self._owner = threading.current_thread() is threading.main_thread() and not _State.installed
        if self._owner:
            # a signal ignored when the job started stays ignored (a job started with `&` by a script
            # ignores SIGINT, so a Ctrl-C meant for the script does not stop it)
            self._previous = {int(s): signal.signal(s, _on_signal) for s in SIGNALS
                              if signal.getsignal(s) is not signal.SIG_IGN}
            _State.installed, _State.received, _State.pending, _State.depth = True, None, None, 0
        return self

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if self._owner:
            _State.installed, self._owner = False, False
        self._previous = {}

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            signum = _signal_of(exc)
        else:
            # a signal sent to the whole process group (Ctrl-C aside: `timeout`, `kill -- -PGID`, a scheduler)
            # also ends the data loader's workers, and the job may then fail with the loader's RuntimeError
            # ("DataLoader worker ... is killed by signal") before or instead of the handler's exception
            signum = _State.received if exc is not None else None
        if signum is None:
            self._restore()
            return False
        for s in SIGNALS:  # a second Ctrl-C while the message is written is ignored
            with contextlib.suppress(ValueError):
                signal.signal(s, signal.SIG_IGN)
        try:
            if self.show:
                line = f"interrupted by {signal.Signals(signum).name}: {self.advice()}"
                log_file = self.log_file() if callable(self.log_file) else self.log_file
                append_to_log(log_file, line, level="WARNING")
                sys.stdout.flush()
                print(line, file=sys.stderr, flush=True)
        finally:
            self._restore()
        raise SystemExit(EXIT_STATUS.get(signum, 128 + signum)) from None
