"""Cancelling a blocking PyAV call (opening or reading a network stream) from another thread.

FFmpeg polls an interrupt callback every ~100 ms while it waits on the network, and PyAV installs
one when a timeout is given (``av.open(..., timeout=(open, read))``); but it exposes no way to ask
for an interrupt. Its callback compares ``time.monotonic()``, read through the ``time`` name of
:mod:`av.container.core`, with the start of the call plus the timeout. :func:`cancellable` gives
that module a clock which, in a thread whose cancel event is set, leaps a million seconds ahead at
each reading: the pending call then times out at FFmpeg's next poll and raises
:class:`av.ExitError`, and the caller, seeing its event set, knows that it was cancelled rather
than timed out. Every other thread reads the ordinary clock. Closing the container from the other
thread instead would free it under the reading thread's feet.

Where PyAV's internals differ (a future version), nothing is installed and a call ends at its own
timeout, as without this module: :func:`install` says which.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

__all__ = ["cancellable", "install"]

_local = threading.local()
_installed: bool | None = None
_lock = threading.Lock()
_LEAP = 1e6  # seconds: beyond any timeout


class _CancellableClock:
    """Stands in for the ``time`` module inside :mod:`av.container.core`."""

    def monotonic(self) -> float:
        now = time.monotonic()
        event = getattr(_local, "event", None)
        if event is not None and event.is_set():
            # Each reading leaps further: the call's start, read after the event was set, is
            # still far behind the next reading.
            _local.leap = getattr(_local, "leap", 0.0) + _LEAP
            return now + _local.leap
        return now

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def install() -> bool:
    """Give PyAV the cancellable clock (once per process); ``False`` where its internals differ."""
    global _installed
    with _lock:
        if _installed is None:
            try:
                import av.container.core as core
            except ImportError:
                _installed = False
            else:
                clock = getattr(core, "time", None)
                if clock is time:
                    core.time = _CancellableClock()
                    _installed = True
                else:
                    _installed = isinstance(clock, _CancellableClock)
        return _installed


@contextlib.contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    """Within this block, PyAV calls made by this thread end (``av.ExitError``) within about
    0.1 s of ``event`` being set by any thread."""
    install()
    previous = getattr(_local, "event", None)
    _local.event = event
    try:
        yield
    finally:
        _local.event = previous
        _local.leap = 0.0
