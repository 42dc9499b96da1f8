"""One line when a one-time step is slow: ``with slow_step("exporting the ONNX graph once ..."):``.

A command that waits for seconds without a word looks hung (a first ONNX export, an int8
calibration). :func:`slow_step` says what it is doing, once, but only when the step is still
running after ``after`` seconds (a fast step stays silent). The line goes to the logging
configuration of the command (console and log file under Hydra); without any logging set up,
to stderr.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("dbd_lightning.progress")

#: seconds a one-time step may take before its line is shown
SLOW_AFTER_S = 1.0


def say(message: str) -> None:
    """``message`` as one line: through logging when it is configured, else on stderr."""
    if logging.getLogger().hasHandlers() and log.isEnabledFor(logging.INFO):
        log.info(message)
    else:
        print(message, file=sys.stderr, flush=True)


@contextmanager
def slow_step(message: str, after: float = SLOW_AFTER_S) -> Iterator[None]:
    """Show ``message`` once if the block is still running after ``after`` seconds."""
    timer = threading.Timer(after, say, args=(message,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
