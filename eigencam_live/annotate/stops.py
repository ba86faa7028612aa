"""Stop signals held while an ``annotate`` run lasts (:mod:`.pipeline`)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["STOP_SIGNALS", "stop_signals_held"]


#: Signals that stop a run: while it lasts they are requests (see :func:`stop_signals_held`).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM while an annotate run lasts: a stop is then a request the run
    answers (the frames through the network written, the file finished), never an exception
    half-way through a step, which could only lose the file.

    Yields the list of signals that arrived meanwhile. On leaving, each is handed to the handler
    that was there before: a Python handler is called (the ``KeyboardInterrupt`` it raises, as
    Ctrl-C's does, is dropped: the caller stops the run because the list is not empty); with the
    default action the signal is raised again, and the process ends with its file complete.
    """
    stops: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    previous = {}
    for sig in STOP_SIGNALS:
        handler = signal.getsignal(sig)
        if handler in (signal.SIG_IGN, None):  # ignored, or set outside Python: left as it is
            continue
        previous[sig] = handler
        signal.signal(sig, lambda signum, _frame: stops.append(signum))
    try:
        yield stops
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(stops):
            handler = previous[sig]
            if callable(handler):
                with contextlib.suppress(KeyboardInterrupt):
                    handler(sig, None)
            else:
                signal.raise_signal(sig)
