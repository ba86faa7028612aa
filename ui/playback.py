"""The source side of the app's worker: one open source, its capture thread, file pacing, seeking.

No Qt here: :class:`~ui.worker.Pipeline` turns what this raises or returns into signals.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from eigencam_live.video import Capture, Frame, SourceInfo, open_source

__all__ = ["Playback"]

#: Falling further behind a file's own clock than this (a slow model) restarts the clock.
MAX_LAG_S = 0.25


class Playback:
    """The source being shown, read through a :class:`~eigencam_live.video.Capture` thread.

    Live sources give their newest frame (older ones are dropped and counted by the capture);
    files and folders give every frame, and :meth:`pace` holds them to their own rate.

    Args:
        demo_size: ``(width, height)`` of the synthetic scene ("scene").
        demo_fps: its frame rate.
        clock: the time source (``time.monotonic``).
    """

    def __init__(self, demo_size: tuple[int, int] = (640, 480), demo_fps: float = 30.0,
                 *, clock: Callable[[], float] = time.monotonic) -> None:
        self.demo_size = demo_size
        self.demo_fps = demo_fps
        self._clock = clock
        self._capture: Capture | None = None
        self.info: SourceInfo | None = None
        self.ended = False
        self._anchor: tuple[float, float] | None = None  # (clock time, pts) of the pacing origin
        self._opening: threading.Event | None = None  # set to abort the open in progress
        self._held = False  # paused: a source that can wait is not read (see hold)

    @property
    def is_open(self) -> bool:
        return self._capture is not None

    @property
    def seekable(self) -> bool:
        info = self.info
        return self._capture is not None and info is not None and bool(info.seekable) and not info.live

    @property
    def waits(self) -> bool:
        """The source waits while paused and goes on from where it stopped (the demo clip); a
        camera or a stream is read on (see :meth:`hold`)."""
        capture = self._capture
        return capture is not None and capture.source.holdable

    @property
    def dropped(self) -> int:
        """Frames a live capture dropped because newer ones arrived."""
        return int(self._capture.dropped) if self._capture is not None else 0

    @property
    def warning(self) -> str | None:
        """What the source lost (a file cut off, images it could not read), once known."""
        capture = self._capture
        if capture is None:
            return None
        return "; ".join(w for w in (capture.warning, capture.damage) if w) or None

    @property
    def fps(self) -> float:
        """The source's nominal rate (0 when unknown)."""
        return float(self.info.fps or 0.0) if self.info is not None else 0.0

    @property
    def link_status(self) -> str:
        """``"reconnecting... attempt 3, no frame for 12 s (why)"`` while a live source is lost,
        ``""`` while frames flow (any thread)."""
        capture = self._capture
        return capture.link_state().describe() if capture is not None else ""

    @property
    def origin(self) -> float:
        """Seconds of the source's clock where it starts, as players show it: a transport's clock
        (MPEG-TS) starts anywhere (:attr:`~eigencam_live.video.FileSource.origin`); 0 elsewhere."""
        capture = self._capture
        return float(getattr(capture.source, "origin", 0.0)) if capture is not None else 0.0

    def image_name(self, index: int) -> str | None:
        """The file name of a folder's image ``index``; ``None`` for other sources."""
        capture = self._capture
        files = getattr(capture.source, "files", None) if capture is not None else None
        return os.path.basename(files[index]) if files is not None and 0 <= index < len(files) else None

    def largest_frame(self) -> tuple[int, int] | None:
        """``(width, height)`` that fits every frame of a source whose frames differ in size (a
        folder's images: :meth:`~eigencam_live.video.FolderSource.largest_size`); ``None`` for a
        source of one size."""
        capture = self._capture
        largest = getattr(capture.source, "largest_size", None) if capture is not None else None
        return largest() if largest is not None else None

    def interrupt_opening(self) -> None:
        """Abort an :meth:`open` in progress in another thread (a network stream that does not
        answer): it raises :class:`SourceError` within about 0.1 s. Any thread."""
        opening = self._opening
        if opening is not None:
            opening.set()

    def open(self, spec: str | int) -> SourceInfo:
        """Open ``spec`` and start its capture thread (the old source closes only once this one opened).

        Raises:
            SourceError: ``spec`` cannot be opened, or :meth:`interrupt_opening` was called.
        """
        self._opening = cancel = threading.Event()
        try:
            source = open_source(spec, demo_size=self.demo_size, demo_fps=self.demo_fps, realtime=True,
                                 cancel=cancel)
        finally:
            self._opening = None
        self.close()
        self._capture = Capture(source)
        self._capture.hold(self._held)
        self._capture.start()
        self.info = source.info
        self.ended = False
        self._anchor = None
        return source.info

    def close(self) -> None:
        """Stop the capture thread (idempotent)."""
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.stop(timeout=1.0)

    def read(self, timeout: float) -> Frame | None:
        """The next frame; ``None`` when none arrived within ``timeout`` s or at the end (then
        :attr:`ended` is ``True``).

        Raises:
            EigenCamError: the source failed (the caller reports it and closes).
        """
        capture = self._capture
        if capture is None:
            return None
        try:
            frame = capture.read_latest(timeout=timeout) if self.info.live else capture.read(timeout=timeout)
        except TimeoutError:
            return None
        if frame is None:
            self.ended = True
        return frame

    def pace(self, frame: Frame, wait: Callable[[float], object]) -> None:
        """Hold a file's ``frame`` until its time comes (the capture reads files as fast as it can);
        ``wait(seconds)`` sleeps and may return early (a stop event's ``wait``)."""
        if self.info is None or self.info.live:
            return
        now = self._clock()
        pts = float(frame.pts)
        anchor = self._anchor
        if anchor is None or pts < anchor[1] or now - (anchor[0] + pts - anchor[1]) > MAX_LAG_S:
            # First frame, a seek, or we fell behind (slow model): restart the clock here.
            self._anchor = (now, pts)
            return
        due = anchor[0] + pts - anchor[1]
        if due > now:
            wait(min(due - now, 1.0))

    def hold(self, held: bool) -> None:
        """Paused (``True``) or playing. A source that can wait (the demo clip) is no longer read
        while paused, and goes on from the frame it stopped at; a camera or a stream is read on."""
        self._held = held
        if self._capture is not None:
            self._capture.hold(held)

    def step(self) -> None:
        """While paused, let a waiting source give its next frame (for the next :meth:`read`)."""
        if self._capture is not None:
            self._capture.step()

    def restart_clock(self) -> None:
        """Pace from the next frame on as if it were the first (after a pause or a seek)."""
        self._anchor = None

    def seek(self, index: int) -> bool:
        """Go to frame ``index``; ``False`` (nothing done) when the source cannot seek."""
        if not self.seekable:
            return False
        self._capture.seek(index)
        self.ended = False
        self._anchor = None
        return True
