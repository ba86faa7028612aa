"""Video files and network streams, decoded by PyAV: exact timestamps, and the rate as a
:class:`~fractions.Fraction` (29.97 stays 30000/1001)."""

from __future__ import annotations

import os
import time
from fractions import Fraction

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource, SourceInfo

__all__ = ["STREAM_SCHEMES", "VIDEO_EXTENSIONS", "FileSource", "StreamSource"]

#: File endings taken as videos where a folder of inputs is expanded (``annotate``).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".gif")
#: What :func:`~.sources.open_source` opens as a live network stream.
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
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            rate = Fraction(30)
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            self._container.close()
            raise SourceError(f"{self._describe()} has a video stream without a frame size")
        frames = stream.frames or None
        if frames is None and stream.duration and stream.time_base:
            frames = int(round(float(stream.duration * stream.time_base * rate))) or None
        self.info = SourceInfo(
            self.kind, os.path.basename(self.path.rstrip("/")) or self.path, width, height, Fraction(rate), frames,
            self.kind == "stream", self.kind == "file", self.path if self.kind == "file" else None,
            bool(self._container.streams.audio),
        )
        self._frames = self._container.decode(stream)

    def read(self) -> Frame | None:
        import av

        try:
            frame = next(self._frames)
        except StopIteration:
            self._check_complete()
            return None
        except av.FFmpegError as exc:
            if self._count == 0:
                raise SourceError(f"cannot decode {self._describe()}: {_av_reason(exc)}") from exc
            self.warning = (f"{self._describe()} is damaged or cut off: decoding stopped after {self._count} frames "
                            f"({_av_reason(exc)})")
            return None
        now = time.monotonic()
        if (frame.width, frame.height) != (self.info.width, self.info.height):
            # A stream that changes resolution mid-way: every frame keeps the size the consumer
            # (and the output file) was set up for.
            image = frame.to_ndarray(format="bgr24", width=self.info.width, height=self.info.height)
        else:
            image = frame.to_ndarray(format="bgr24")
        if frame.pts is not None and frame.time_base is not None:
            pts = float(frame.pts * frame.time_base)
        else:
            pts = self._count / float(self.info.rate)
        out = Frame(image, self._count, pts, now)
        self._count += 1
        return out

    def _check_complete(self) -> None:
        if self._count == 0:
            raise SourceError(f"{self._describe()} holds no decodable video frames")
        expected = self.info.frame_count
        # Containers round their frame counts; only a clear shortfall means a cut-off file.
        if self.kind == "file" and expected and self._count < expected - max(2, expected // 100):
            self.warning = (f"{self._describe()} ends early (cut off?): decoded {self._count} of "
                            f"{expected} frames")

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


def _av_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if "Errno" in text else text.strip()
