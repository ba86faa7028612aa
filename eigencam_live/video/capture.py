"""The threaded capture: a :class:`FrameSource` read in its own thread into a bounded buffer."""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource

__all__ = ["Capture", "LinkState"]

_END = object()
#: Frames of a live source that all came at least ``_SLACK_TOLERANCE_S`` earlier than due for
#: this long (seconds) are played sooner by that least earliness, less ``_SLACK_MARGIN_S``: latency
#: a past stall added is given back (had the clock been that much sooner, none of them would have
#: been late). A tolerance of 0.1 s left up to 0.1 s behind for good: 6 frames of a 60 fps demo.
_SLACK_WINDOW_S = 2.0
_SLACK_TOLERANCE_S = 0.02
_SLACK_MARGIN_S = 0.01
#: A live frame due this much later than it arrived (seconds; at least twice ``max_latency``) is
#: a jump of the source's clock.
_CLOCK_JUMP_S = 5.0
#: A reader back after this long (seconds: it was loading a model, or paused) starts a live source
#: again from its newest frame, on a clock that is due now: the delays of frames that arrived late
#: while nobody read (the network being exported took both cores) are not kept as latency.
_REANCHOR_GAP_S = 0.5
#: At most this many frames of a live source wait in the buffer (a memory bound; bursts are
#: normally far shorter than ``max_latency``).
_MAX_LIVE_FRAMES = 120


@dataclass(frozen=True)
class LinkState:
    """How a live capture's connection stands, for a status line.

    Attributes:
        live: the source is live (files and folders: the rest means nothing).
        reconnecting: the source stopped delivering and is being reopened.
        attempts: reopening attempts since the last frame (0 while frames flow).
        since_frame: seconds since the last frame arrived (since the start when none has).
        reason: why the source stopped delivering, or why the last attempt failed, else ``None``.
    """

    live: bool
    reconnecting: bool
    attempts: int
    since_frame: float
    reason: str | None

    def describe(self, stalled_after: float = 2.0) -> str:
        """One line for a status bar; ``""`` while frames flow (or for a file)."""
        if not self.live:
            return ""
        if self.reconnecting:
            why = f" ({self.reason})" if self.reason else ""
            return f"reconnecting... attempt {self.attempts}, no frame for {self.since_frame:.0f} s{why}"
        if self.since_frame >= stalled_after:
            return f"waiting for the source: no frame for {self.since_frame:.0f} s"
        return ""


@dataclass
class _Entry:
    item: object  # a Frame, _END or an exception
    pts: float = 0.0
    epoch: int = 0  # live pacing: entries of an earlier epoch (before a clock jump) are due at once


class Capture:
    """Reads a :class:`FrameSource` in its own thread into a bounded buffer.

    Files and folders: the buffer keeps up to ``queue_size`` frames (default 8), the thread waits
    for room and never drops, and the stream ends with an end-of-stream marker (``read`` returns
    ``None``).

    Live sources are played out by their timestamps: a frame is due at its ``pts`` on a clock set
    by the first frame (it slips later when frames arrive late, and gives back latency that a past
    stall added once frames have come early for a while). :meth:`read` waits for the oldest frame
    to come due and returns the newest frame that is due; only frames that a newer due frame
    overtook are dropped, and counted in :attr:`dropped`. A stream whose frames arrive in bursts so
    keeps its frame rate, one burst later; a camera (frames due on arrival) behaves as a
    newest-frame slot. At most ``max_latency`` seconds of frames wait (at most ``queue_size``: by
    default that many seconds at the nominal rate); beyond that the thread waits for the oldest to
    come due.

    A webcam or stream that stops delivering is reopened, after ``reconnect_delays`` (the last one
    repeated: a bounded backoff), until it delivers again or :meth:`stop` is called (or after
    ``reconnect_attempts`` failed attempts, then the consumer gets a :class:`SourceError`);
    :meth:`link_state` says how that stands. An exception in the capture thread is raised by the
    consumer's next :meth:`read`. :meth:`stop` interrupts a source blocked in a read or a reopen
    (:meth:`FrameSource.interrupt`) and joins the thread.

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
        reconnect_delays: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 3.0),
        reconnect_attempts: int | None = None,
        max_latency: float = 2.0,
    ) -> None:
        self.source = source
        self.info = source.info
        self.live = source.info.live
        if queue_size is None:
            rate = float(source.info.rate or 30)
            size = min(_MAX_LIVE_FRAMES, max(2, math.ceil(max_latency * rate) + 2)) if self.live else 8
        else:
            size = queue_size
        if size < 1:
            raise ValueError(f"queue_size must be >= 1. Got {size}")
        if not reconnect_delays or min(reconnect_delays) < 0:
            raise ValueError(f"reconnect_delays must be non-negative seconds, at least one. Got {reconnect_delays!r}")
        if not max_latency > 0:
            raise ValueError(f"max_latency must be positive seconds. Got {max_latency!r}")
        self.queue_size = size
        self.reconnect_delays = tuple(float(d) for d in reconnect_delays)
        self.reconnect_attempts = reconnect_attempts
        self.max_latency = float(max_latency)
        self.dropped = 0
        #: ``True`` from the moment a live source stops delivering until its next frame.
        self.reconnecting = False
        #: ``time.monotonic()`` when the newest frame arrived (``None``: none yet).
        self.last_frame_at: float | None = None
        self._started_at = time.monotonic()
        self._reason: str | None = None
        self._buffer: collections.deque[_Entry] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._seek_to: int | None = None
        self._hold = False  # see hold()
        self._going_on = False  # a hold ended: the next read goes on from the first frame it held
        self._permits = 0  # frames step() lets through a hold
        self._reading = False  # the thread is in the source's read
        self._failures = 0  # reconnection attempts without a frame in between
        self._generation = 0
        self._ended = False
        self._thread: threading.Thread | None = None
        # Live pacing: due time = pts + offset (monotonic seconds).
        self._offset: float | None = None
        self._epoch = 0
        self._last_pts: float | None = None
        self._slack = (math.inf, 0.0)  # (least earliness seen, since when)
        self._held = False  # the buffer was full of frames not yet due, since the slack window began
        self._read_at: float | None = None  # when the reader last took a frame
        self._clock_at_read: tuple[int, float | None] = (0, None)  # (epoch, offset) then

    @property
    def warning(self) -> str | None:
        """The source's warning (e.g. a file cut off in the middle), once it has ended."""
        return self.source.warning

    @property
    def damage(self) -> str | None:
        """A file's damaged video packets, left out (:attr:`.files.FileSource.damage`), else ``None``."""
        return getattr(self.source, "damage", None)

    def link_state(self, now: float | None = None) -> LinkState:
        """How the source's connection stands (any thread)."""
        now = time.monotonic() if now is None else now
        last = self.last_frame_at if self.last_frame_at is not None else self._started_at
        return LinkState(self.live, self.reconnecting, self._failures, max(0.0, now - last), self._reason)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Capture:
        if self._thread is None:
            self._started_at = time.monotonic()
            self._thread = threading.Thread(target=self._run, name=f"capture-{self.info.kind}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread and release the source; returns within about ``timeout`` seconds (a
        source blocked in a read or a reopen is interrupted)."""
        self._stop.set()
        self.source.interrupt()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if thread is None:
            self.source.close()
        # A thread still in a call that cannot be interrupted (a camera driver) is a daemon and
        # closes the source itself when the call returns.

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
        """The next frame; ``None`` at the end of the stream. Live sources: the newest frame that
        is due (waiting for the oldest buffered one to come due); the ones it overtook are dropped.

        Raises:
            TimeoutError: nothing (due) arrived within ``timeout`` seconds.
            Exception: whatever stopped the capture thread (:class:`SourceError`...).
        """
        if self._thread is None:
            self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            now = time.monotonic()
            if self.live and self._read_at is not None and now - self._read_at > _REANCHOR_GAP_S:
                self._reanchor(now)
            if self._going_on:
                self._go_on(now)
            while True:
                now = time.monotonic()
                wait = 0.1
                if self.live:
                    self._prune(now)
                if self._buffer:
                    entry = self._buffer[0]
                    due = self._due(entry) if self.live and isinstance(entry.item, Frame) else now
                    if due <= now:
                        break
                    wait = min(wait, due - now)
                elif self._stop.is_set() or not self._thread.is_alive():
                    return None
                if deadline is not None:
                    if deadline - now <= 0:
                        raise TimeoutError(f"no frame from {self.info.name} within {timeout} s")
                    wait = min(wait, deadline - now)
                self._cond.wait(wait)
            item = entry.item
            if item is _END:
                return None  # keep the marker: every later read also sees the end
            self._buffer.popleft()
            self._read_at = time.monotonic()
            self._clock_at_read = (self._epoch, self._offset)
            self._cond.notify_all()
        if isinstance(item, BaseException):
            raise item
        return item

    def read_latest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame (files: discarding older buffered ones, counted in :attr:`dropped`;
        live sources: as :meth:`read`, which already gives the newest due frame)."""
        frame = self.read(timeout)
        if self.live:
            return frame
        while frame is not None:
            with self._cond:
                newer = bool(self._buffer) and isinstance(self._buffer[0].item, Frame)
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
            self._offset = None  # live pacing starts again from the next frame
            self._cond.notify_all()
        if self._thread is None:
            self.start()

    def hold(self, held: bool) -> None:
        """Stop reading a :attr:`~FrameSource.holdable` source (a pause: it goes on from where it
        stopped, not from where its clock ran to meanwhile), or read on. No effect on others: a
        camera is read on while paused, else its driver's buffers go stale."""
        if not self.source.holdable:
            return
        with self._cond:
            if self._hold and not held:  # on from where it stopped: see _go_on
                self._going_on = True
                self._read_at = None  # (a reader back after a while restarts a camera at its newest)
            self._hold, self._permits = bool(held), 0
            self._cond.notify_all()

    def step(self) -> None:
        """While held, let the source's next frame through, unless one is buffered or on its way
        already (the next :meth:`read` gets that one)."""
        with self._cond:
            if self._hold and not self._reading and not self._permits and not any(
                    isinstance(e.item, Frame) for e in self._buffer):
                self._permits = 1
                self._cond.notify_all()

    # -- live pacing (under self._cond) ----------------------------------------------------------
    def _due(self, entry: _Entry) -> float:
        """When ``entry``'s frame is due on the monotonic clock."""
        if entry.epoch != self._epoch or self._offset is None:
            return -math.inf  # from before a jump of the source's clock: due at once
        return entry.pts + self._offset

    def _schedule(self, frame: Frame, now: float) -> _Entry:
        """Place ``frame`` on the play-out clock (arriving ``now``)."""
        pts = float(frame.pts)
        if self._offset is None or (self._last_pts is not None and pts < self._last_pts):
            # The first frame (or a source clock that went back): due on arrival.
            self._offset = now - pts
            self._epoch += 1
            self._slack = (math.inf, now)
        due = pts + self._offset
        if due < now:
            # Late: the source (or the network) runs behind the clock; play later from now on.
            self._offset += now - due
            due = now
        elif due - now > max(_CLOCK_JUMP_S, 2 * self.max_latency):
            # Far ahead: the source's clock jumped forward; what is buffered is due at once.
            self._offset = now - pts
            self._epoch += 1
            due = now
        least, since = self._slack
        least = min(least, due - now)
        if now - since >= _SLACK_WINDOW_S:
            # Every frame for a while came that early: a stall that is over left latency behind;
            # play sooner. Not where the buffer was full meanwhile: that source runs ahead of its
            # clock (a file served over HTTP) and is held back, not late.
            if least > _SLACK_TOLERANCE_S and not self._held:
                self._offset -= least - _SLACK_MARGIN_S
            least, since = math.inf, now
            self._held = False
        self._slack = (least, since)
        self._last_pts = pts
        return _Entry(frame, pts, self._epoch)

    def _reanchor(self, now: float) -> None:
        """The newest buffered frame due ``now`` (the older ones overtaken), and the slack window
        started again: see ``_REANCHOR_GAP_S``."""
        frames = [e for e in self._buffer if isinstance(e.item, Frame) and e.epoch == self._epoch]
        if frames and self._offset is not None:
            target = now - frames[-1].pts
            epoch, before = self._clock_at_read
            if epoch == self._epoch and before is not None:
                target = max(target, before)  # give back only what slipped while away, never skip ahead
            self._offset = min(self._offset, target)
        self._slack = (math.inf, now)
        self._held = False

    def _go_on(self, now: float) -> None:
        """The first read after a hold ended: the clip goes on from the first frame it held, due
        ``now`` (not when the hold ended: the reader may have been busy since, with a frame it
        had before), and the frames after it at their own rate."""
        self._going_on = False
        frames = [e for e in self._buffer if isinstance(e.item, Frame) and e.epoch == self._epoch]
        if frames and self._offset is not None:
            self._offset = now - frames[0].pts
        self._slack = (math.inf, now)

    def _prune(self, now: float) -> None:
        """Drop the frames that a newer due frame overtook (stale in time); none while held, nor
        until the first read after the hold (:meth:`_go_on`): each step gives the next frame (the
        one in flight when the hold came, and the one before it the paused reader had not taken,
        were both due by then: a step skipped one)."""
        if self._hold or self._going_on:
            return
        buf = self._buffer
        while (len(buf) >= 2 and isinstance(buf[0].item, Frame) and isinstance(buf[1].item, Frame)
               and self._due(buf[1]) <= now):
            buf.popleft()
            self.dropped += 1

    # -- capture thread --------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    self._reading = False  # what it read is in the buffer by now
                    target, self._seek_to = self._seek_to, None
                    generation = self._generation
                    if target is None and (self._ended or (self._hold and not self._permits)):
                        self._cond.wait(0.1)  # wait for a seek, a step, the hold's end or stop
                        continue
                    self._permits = max(0, self._permits - 1)
                    self._reading = True
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
                # when its data came (a stream's frames given out at a timeout came seconds before)
                self.last_frame_at = min(frame.captured, time.monotonic()) if self.live else time.monotonic()
                self._failures = 0
                self._reason = None
                self.reconnecting = False
                self._put(frame, generation)
        except BaseException as exc:  # carried to the consumer
            self._put_error(exc)
        finally:
            self.source.close()

    def _put(self, item: object, generation: int) -> None:
        with self._cond:
            if self.live:
                self._put_live(item, generation)
                return
            while len(self._buffer) >= self.queue_size and not self._stop.is_set():
                if generation != self._generation:
                    return
                self._cond.wait(0.1)
            if self._stop.is_set() or generation != self._generation:
                return
            self._buffer.append(_Entry(item))
            self._reading = False  # (in the same hold of the lock: a step() sees the frame, or the read)
            self._cond.notify_all()

    def _put_live(self, item: object, generation: int) -> None:
        if generation != self._generation:
            return
        now = time.monotonic()
        entry = self._schedule(item, now) if isinstance(item, Frame) else _Entry(item, epoch=-1)
        buf = self._buffer
        self._prune(now)
        while len(buf) >= self.queue_size:
            # Full: the oldest frame goes once the one after it is due (it is stale then); until
            # then this thread waits (the source is read ahead of its clock).
            following = buf[1] if len(buf) > 1 else entry
            wait = (self._due(following) if isinstance(following.item, Frame) else now) - now
            if wait <= 0:
                buf.popleft()
                self.dropped += 1
                continue
            if self._stop.is_set() or generation != self._generation:
                return
            self._held = True
            self._cond.wait(min(wait, 0.1))
            now = time.monotonic()
            self._prune(now)
        buf.append(entry)
        self._reading = False  # (in the same hold of the lock: a step() sees the frame, or the read)
        self._cond.notify_all()

    def _put_error(self, exc: BaseException) -> None:
        with self._cond:
            # After the frames already read (they came before the failure), and past the size
            # bound: the thread must not wait for room to report that it failed.
            self._buffer.append(_Entry(exc, epoch=-1))
            self._cond.notify_all()

    def _reconnect(self) -> None:
        """Reopen the source after the backoff, until it opens or the capture stops; the next frame
        read ends the outage (a source that opens and still sends nothing backs off further)."""
        self.reconnecting = True
        self._reason = getattr(self.source, "last_error", None) or f"{self.info.name} stopped delivering frames"
        while not self._stop.is_set():
            if self.reconnect_attempts is not None and self._failures >= self.reconnect_attempts:
                raise SourceError(
                    f"{self.info.name} stopped delivering frames; gave up after {self.reconnect_attempts} "
                    f"reconnection attempts ({self._reason})"
                )
            delay = self.reconnect_delays[min(self._failures, len(self.reconnect_delays) - 1)]
            if self._stop.wait(delay):
                return
            self._failures += 1
            try:
                self.source.reopen()
                return
            except SourceError as exc:
                self._reason = str(exc)
