"""One rate meter for every frames-per-second figure the app shows (capture, processing, display)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateMeter"]


class RateMeter:
    """Events per second over a sliding window of the last ``window`` seconds.

    An event may carry a running count (a frame index): the rate is then counted in those units,
    so a capture that skipped frames in between still reports the source's rate. A count that goes
    back (a seek, a new source) starts a new measurement; the same count again is not a new event.

    An event may also carry its own timestamp (a live frame's time on the source's clock): the
    counts are then divided by the longer of the two spans, arrival and timestamps. Frames come no
    faster than their source made them: a stream's decoder hands over what it buffered while
    connecting in one burst (a trial read 270 to 470 fps for a 12.5 fps stream after each connect),
    and a slow network stretches the arrivals past the timestamps.

    Args:
        window: seconds of history the rate is computed over.
        clock: the time source (``time.monotonic``); tests pass their own.
        maxlen: most events kept (bounds memory at very high rates).
    """

    def __init__(self, window: float = 2.0, *, clock: Callable[[], float] = time.monotonic, maxlen: int = 256) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive. Got {window}")
        self.window = float(window)
        self._clock = clock
        self._events: deque[tuple[float, int, float | None]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()  # the worker ticks while the window reads

    def tick(self, count: int | None = None, *, t: float | None = None, stamp: float | None = None) -> None:
        """Record one event at time ``t`` (default: now), optionally with its running ``count`` and
        its own timestamp ``stamp`` (seconds; see the class)."""
        t = self._clock() if t is None else float(t)
        with self._lock:
            last = self._events[-1][1] if self._events else None
            if count is None:
                count = 0 if last is None else last + 1
            elif last is not None and count <= last:
                if count == last:
                    return
                self._events.clear()
            self._events.append((t, int(count), None if stamp is None else float(stamp)))

    @property
    def newest(self) -> float | None:
        """Time of the last event (``None`` before the first)."""
        with self._lock:
            return self._events[-1][0] if self._events else None

    def rate(self, now: float | None = None) -> float:
        """Events (or counted units) per second over the window ending at ``now`` (default: now).
        Slower than one event a window (a network taking seconds a frame), over the last two
        events, until no event has come for twice their interval (or the window): then 0."""
        now = self._clock() if now is None else float(now)
        with self._lock:
            while len(self._events) > 2 and now - self._events[0][0] > self.window:
                self._events.popleft()
            if len(self._events) < 2:
                return 0.0
            (t0, c0, s0), (t1, c1, s1) = self._events[0], self._events[-1]
        if now - t0 > self.window and now - t1 > max(self.window, 2 * (t1 - t0)):
            return 0.0  # stalled
        span = max(t1 - t0, s1 - s0) if s0 is not None and s1 is not None else t1 - t0
        return (c1 - c0) / span if span > 0 else 0.0

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
