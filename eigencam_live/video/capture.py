"""The threaded capture: a :class:`FrameSource` read in its own thread into a bounded buffer."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource

__all__ = ["Capture"]

_END = object()


class Capture:
    """Reads a :class:`FrameSource` in its own thread into a bounded buffer.

    Live sources keep the newest ``queue_size`` frames (default 2) and count the stale frames they
    drop in :attr:`dropped`; other sources keep up to ``queue_size`` frames (default 8), the thread
    waits for room and never drops, and the stream ends with an end-of-stream marker (``read``
    returns ``None``). An exception in the capture thread is raised by the consumer's next
    :meth:`read`. A live source that stops delivering is reopened with a bounded exponential backoff
    (``reconnect_delays``); :attr:`reconnecting` is ``True`` meanwhile, and after the last attempt
    the consumer gets a :class:`SourceError`.

    Usage::

        with Capture(open_source("clip.mp4")) as cap:
            for frame in cap:
                ...
    """

    def __init__(
        self,
        source: FrameSource,
        *,
        queue_size: int | None = None,
        reconnect_delays: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0),
    ) -> None:
        self.source = source
        self.info = source.info
        self.live = source.info.live
        size = queue_size if queue_size is not None else (2 if self.live else 8)
        if size < 1:
            raise ValueError(f"queue_size must be >= 1. Got {size}")
        self.queue_size = size
        self.reconnect_delays = tuple(reconnect_delays)
        self.dropped = 0
        self.reconnecting = False
        self._buffer: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._seek_to: int | None = None
        self._failures = 0  # consecutive reconnection attempts without a frame in between
        self._generation = 0
        self._ended = False
        self._thread: threading.Thread | None = None

    @property
    def warning(self) -> str | None:
        """The source's warning (e.g. a file cut off in the middle), once it has ended."""
        return self.source.warning

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Capture:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"capture-{self.info.kind}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and release the source; returns within about ``timeout`` seconds."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None:
            self.source.close()
        # When the thread is stuck in a blocking read (a dead network stream) it is a daemon and
        # closes the source itself when the read returns.

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    # -- consumer side ---------------------------------------------------------------------------
    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame (live sources: the oldest kept one); ``None`` at the end of the stream.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            Exception: whatever stopped the capture thread (:class:`SourceError`...).
        """
        if self._thread is None:
            self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._buffer:
                if self._stop.is_set() or not self._thread.is_alive():
                    return None
                wait = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(f"no frame from {self.info.name} within {timeout} s")
                self._cond.wait(wait)
            item = self._buffer[0]
            if item is _END:
                return None  # keep the marker: every later read also sees the end
            self._buffer.popleft()
            self._cond.notify_all()
        if isinstance(item, BaseException):
            raise item
        return item

    def read_latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame, discarding older buffered ones (counted in :attr:`dropped`)."""
        frame = self.read(timeout)
        while frame is not None:
            with self._cond:
                newer = bool(self._buffer) and isinstance(self._buffer[0], Frame)
            if not newer:
                break
            self.dropped += 1
            frame = self.read(0.0)
        return frame

    def seek(self, index: int) -> None:
        """Flush the buffer; the next :meth:`read` returns frame ``index``."""
        if not self.info.seekable:
            raise SourceError(f"{self.info.kind} source {self.info.name!r} cannot seek")
        with self._cond:
            self._seek_to = int(index)
            self._generation += 1
            self._buffer.clear()
            self._ended = False
            self._cond.notify_all()
        if self._thread is None:
            self.start()

    # -- capture thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    target, self._seek_to = self._seek_to, None
                    generation = self._generation
                    if target is None and self._ended:
                        self._cond.wait(0.1)  # wait for a seek or stop
                        continue
                if target is not None:
                    self.source.seek(target)
                frame = self.source.read()
                if frame is None:
                    if self.live and self.info.kind in ("webcam", "stream") and not self._stop.is_set():
                        self._reconnect()
                        continue
                    self._put(_END, generation)
                    with self._cond:
                        self._ended = self._generation == generation
                    continue
                self._failures = 0
                self._put(frame, generation)
        except BaseException as exc:  # carried to the consumer
            self._put_error(exc)
        finally:
            self.source.close()

    def _put(self, item: object, generation: int) -> None:
        with self._cond:
            if self.live:
                if generation != self._generation:
                    return
                while len(self._buffer) >= self.queue_size:
                    self._buffer.popleft()
                    self.dropped += 1
            else:
                while len(self._buffer) >= self.queue_size and not self._stop.is_set():
                    if generation != self._generation:
                        return
                    self._cond.wait(0.1)
                if self._stop.is_set() or generation != self._generation:
                    return
            self._buffer.append(item)
            self._cond.notify_all()

    def _put_error(self, exc: BaseException) -> None:
        with self._cond:
            # After the frames already read (they came before the failure), and past the size
            # bound: the thread must not wait for room to report that it failed.
            self._buffer.append(exc)
            self._cond.notify_all()

    def _reconnect(self) -> None:
        self.reconnecting = True
        try:
            last: Exception | None = None
            while self._failures < len(self.reconnect_delays):
                delay = self.reconnect_delays[self._failures]
                self._failures += 1
                if self._stop.wait(delay):
                    return
                try:
                    self.source.reopen()
                    return  # the next frame read resets the failure count
                except SourceError as exc:
                    last = exc
            raise SourceError(
                f"{self.info.name} stopped delivering frames; gave up after {len(self.reconnect_delays)} "
                f"reconnection attempts ({last})"
            )
        finally:
            self.reconnecting = False
