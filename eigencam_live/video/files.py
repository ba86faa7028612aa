"""Video files and network streams, decoded by PyAV: exact timestamps, and the rate as a
:class:`~fractions.Fraction` (29.97 stays 30000/1001)."""

from __future__ import annotations

import os
import time
from fractions import Fraction

import numpy as np

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource, SourceInfo
from .timing import nominal_rate

__all__ = ["STREAM_SCHEMES", "VIDEO_EXTENSIONS", "FileSource", "StreamSource"]

#: File endings taken as videos where a folder of inputs is expanded (``annotate``).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".gif")
#: What :func:`~.sources.open_source` opens as a live network stream.
#: The rate given to a stream that states none (one picture in a container, say): a still shown
#: for one frame of the commonest video rate.
DEFAULT_RATE = Fraction(30)
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


class FileSource(FrameSource):
    """A video file or a network stream, decoded by PyAV.

    ``pts`` is the container timestamp in seconds (``frame.time``), so variable frame rates are kept.
    A file that is cut off in the middle ends at the last frame that decodes and sets
    :attr:`warning`.
    """

    kind = "file"

    def __init__(self, path: str, *, options: dict[str, str] | None = None) -> None:
        self.path = str(path)
        self._options = options or {}
        self._count = 0
        self._last_pts: float | None = None
        self._damaged = False
        self._open()

    def _describe(self) -> str:
        return self.path

    def _open(self) -> None:
        import av

        try:
            self._container = av.open(self.path, options=self._options, timeout=(10.0, 10.0))
        except av.FFmpegError as exc:
            raise SourceError(f"cannot open {self._describe()} as a video: {_av_reason(exc)}") from exc
        except OSError as exc:
            raise SourceError(f"cannot open {self._describe()}: {exc.strerror or exc}") from exc
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self._describe()} has no video stream")
        self._stream = stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = self._container.decode(stream)
        # The first frame is decoded now: a file that holds no pictures fails here, and its display
        # matrix (a phone held upright) decides the size the consumer gets.
        self._peeked = self._decode_next(first=True)
        rotation = self._peeked.rotation  # degrees counter-clockwise; flips are not applied
        self._turns = (rotation // 90) % 4 if rotation % 90 == 0 else 0
        width, height = self._peeked.width, self._peeked.height
        if not width or not height:
            self._container.close()
            raise SourceError(f"{self._describe()} has a video stream without a frame size")
        self._coded = (width, height)
        if self._turns % 2:
            width, height = height, width
        rate = nominal_rate(stream.average_rate, stream.base_rate, stream.guessed_rate) or DEFAULT_RATE
        frames = stream.frames or None
        if frames is None and stream.duration and stream.time_base:
            frames = int(round(float(stream.duration * stream.time_base * rate))) or None
        self._end = _expected_end(self._container, stream)
        self.info = SourceInfo(
            self.kind, os.path.basename(self.path.rstrip("/")) or self.path, width, height, Fraction(rate), frames,
            self.kind == "stream", self.kind == "file", self.path if self.kind == "file" else None,
            bool(self._container.streams.audio), stream.time_base, (self._turns * 90) % 360,
        )

    def _decode_next(self, *, first: bool = False):
        """The next decoded :class:`av.VideoFrame`, or ``None`` at the end (or at damage, noted in
        :attr:`warning`); the ``first`` frame must exist (else :class:`SourceError`)."""
        import av

        try:
            return next(self._frames)
        except StopIteration:
            if first:
                self._container.close()
                raise SourceError(f"{self._describe()} holds no decodable video frames") from None
            return None
        except av.FFmpegError as exc:
            if first or self._count == 0:
                self._container.close()
                raise SourceError(f"cannot decode {self._describe()}: {_av_reason(exc)}") from exc
            self.warning = (f"{self._describe()} is damaged or cut off: decoding stopped after {self._count} frames "
                            f"({_av_reason(exc)})")
            self._damaged = True
            return None

    def read(self) -> Frame | None:
        frame, self._peeked = (self._peeked, None) if self._peeked is not None else (self._decode_next(), None)
        if frame is None:
            if not self._damaged:
                self._check_complete()
            return None
        now = time.monotonic()
        if (frame.width, frame.height) != self._coded:
            # A stream that changes resolution mid-way: every frame keeps the size the consumer
            # (and the output file) was set up for.
            image = frame.to_ndarray(format="bgr24", width=self._coded[0], height=self._coded[1])
        else:
            image = frame.to_ndarray(format="bgr24")
        if self._turns:
            image = np.ascontiguousarray(np.rot90(image, self._turns))  # as the display matrix shows it
        if frame.pts is not None and frame.time_base is not None:
            pts = float(frame.pts * frame.time_base)
        else:
            pts = self._count / float(self.info.rate)
        self._last_pts = pts
        out = Frame(image, self._count, pts, now)
        self._count += 1
        return out

    def _check_complete(self) -> None:
        expected = self.info.frame_count
        # Containers round their frame counts; only a clear shortfall means a cut-off file.
        if self.kind == "file" and expected and self._count < expected - max(2, expected // 100):
            self.warning = (f"{self._describe()} ends early (cut off?): decoded {self._count} of "
                            f"{expected} frames")
        elif self.kind == "file" and self._end is not None and self._last_pts is not None:
            # Matroska stores no frame count, but its header gives the duration.
            shortfall = self._end - (self._last_pts + 1 / float(self.info.rate))
            if shortfall > max(1.0, 0.05 * self._end):
                self.warning = (f"{self._describe()} ends early (cut off?): video stops at {self._last_pts:.2f} s "
                                f"of {self._end:.2f} s")

    def seek(self, index: int) -> None:
        if not self.info.seekable:
            super().seek(index)
        index = max(0, int(index))
        stream = self._stream
        target = index / self.info.rate  # seconds, relative to the first frame
        start = stream.start_time or 0
        offset = start + int(target / stream.time_base)
        self._container.seek(offset, stream=stream, backward=True, any_frame=False)
        self._frames = self._container.decode(stream)
        self._peeked = None
        self._count = index
        # Decode forward from the keyframe to the frame we want; keep it for the next read.
        half = Fraction(1, 2) / self.info.rate
        while True:
            try:
                frame = next(self._frames)
            except StopIteration:
                return
            t = (frame.pts - start) * stream.time_base if frame.pts is not None else target
            if t + half >= target:
                first = frame
                break
        rest = self._frames

        def chain():
            yield first
            yield from rest

        self._frames = chain()

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


class StreamSource(FileSource):
    """A network stream (rtsp, rtmp, http, ...), decoded by PyAV. Live; reconnects on demand."""

    kind = "stream"

    def __init__(self, url: str) -> None:
        options = {"rtsp_transport": "tcp"} if url.startswith(("rtsp://", "rtsps://")) else {}
        self._start = time.monotonic()
        super().__init__(url, options=options)

    def read(self) -> Frame | None:
        import av

        try:
            frame = super().read()
        except (SourceError, av.FFmpegError, OSError):
            return None  # the capture thread treats this as a drop-out and reconnects
        if frame is None:
            return None
        # Live timestamps: seconds since the source started (stream pts may restart on reconnect).
        return Frame(frame.image, frame.index, frame.captured - self._start, frame.captured)

    def _check_complete(self) -> None:
        pass

    def reopen(self) -> None:
        count = self._count
        self.close()
        self._open()
        self._count = count


def _expected_end(container, stream) -> float | None:
    """Where the video should end, in seconds, by the container's header, or ``None``."""
    if stream.duration and stream.time_base:
        return float((stream.duration + (stream.start_time or 0)) * stream.time_base)
    tag = stream.metadata.get("DURATION")  # Matroska, per track, as HH:MM:SS.nnnnnnnnn
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            pass
    if container.duration:
        return (container.duration + (container.start_time or 0)) / 1_000_000
    return None


def _av_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if "Errno" in text else text.strip()
