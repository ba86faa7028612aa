"""Frame sources: webcam, video file, network stream, folder/glob of images, and a demo scene.

Two layers:

* a :class:`FrameSource` reads synchronously (``read() -> Frame | None``); one class per kind;
* :class:`Capture` drives a source from its own thread into a bounded buffer. Live sources keep
  only the newest frames and count the ones they drop; files and folders never drop (the capture
  thread waits for room) and end with an end-of-stream marker. A live source that drops out is
  reopened with a bounded backoff while :attr:`Capture.reconnecting` is ``True``.

Frames are uint8 BGR ``(H, W, 3)`` arrays owned by the consumer. Files and streams are decoded by
PyAV (exact timestamps; the rate is a :class:`~fractions.Fraction`, so 29.97 stays 30000/1001);
webcams by OpenCV.
"""

from __future__ import annotations

import collections
import glob as globlib
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .errors import SourceError

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "Capture",
    "DemoSource",
    "FileSource",
    "FolderSource",
    "Frame",
    "FrameSource",
    "SourceInfo",
    "StreamSource",
    "WebcamSource",
    "list_cameras",
    "open_source",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".ts", ".mts", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".gif")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR, owned by the consumer (the source never reuses it).
        index: 0-based frame number in the source (live sources: gaps show dropped frames).
        pts: seconds; the frame's timestamp in the stream (files: container pts; live sources:
            seconds since the source started).
        captured: ``time.monotonic()`` when the capture thread got it (for latency).
    """

    image: np.ndarray
    index: int
    pts: float
    captured: float


@dataclass(frozen=True)
class SourceInfo:
    """What a source delivers.

    Attributes:
        kind: ``webcam``, ``file``, ``stream``, ``folder`` or ``demo``.
        name: for display.
        width, height: frame size in pixels.
        rate: nominal frame rate, exact (``Fraction(30000, 1001)`` for 29.97).
        frame_count: number of frames when known, else ``None``.
        live: ``True``: keep the newest frame(s) and drop stale ones; ``False``: never drop.
        seekable: :meth:`FrameSource.seek` works.
        path: the file or folder path, when there is one (files: used to copy the audio).
        has_audio: the file has an audio stream.
    """

    kind: str
    name: str
    width: int
    height: int
    rate: Fraction
    frame_count: int | None
    live: bool
    seekable: bool
    path: str | None = None
    has_audio: bool = False

    @property
    def fps(self) -> float:
        """Nominal rate as a float (29.97002997...); use :attr:`rate` for exact arithmetic."""
        return float(self.rate)


def _as_rate(value: float | Fraction | int) -> Fraction:
    """An exact rate: floats such as 29.97 become 30000/1001, 23.976 becomes 24000/1001."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    for base in (24, 30, 48, 60, 120):
        ntsc = Fraction(base * 1000, 1001)
        if abs(value - float(ntsc)) < 5e-3:
            return ntsc
    return Fraction(value).limit_denominator(1001)


# ------------------------------------------------------------------------------------------------
# Synchronous sources
# ------------------------------------------------------------------------------------------------
class FrameSource:
    """A synchronous frame reader. Subclasses set :attr:`info` and implement :meth:`read`.

    Attributes:
        info: what the source delivers.
        warning: set when the source ended early or lost data (e.g. a truncated file).
    """

    info: SourceInfo
    warning: str | None = None

    def read(self) -> Frame | None:
        """The next frame, or ``None`` at the end of the stream (live sources: connection lost)."""
        raise NotImplementedError

    def seek(self, index: int) -> None:
        """Make the next :meth:`read` return frame ``index`` (seekable sources only)."""
        raise SourceError(f"{self.info.kind} source {self.info.name!r} cannot seek")

    def reopen(self) -> None:
        """Reconnect a live source after it dropped out (raises :class:`SourceError` on failure)."""
        raise SourceError(f"{self.info.kind} source {self.info.name!r} cannot reconnect")

    def close(self) -> None:
        """Release the device or file. Idempotent."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quiet_opencv() -> None:
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except Exception:  # older builds without the logging module
        pass


class WebcamSource(FrameSource):
    """A camera by index, through OpenCV (V4L2 on Linux). Live: pts = seconds since opening."""

    def __init__(self, index: int) -> None:
        self.index = int(index)
        _quiet_opencv()
        self._cap = self._open()
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        rate = _as_rate(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else Fraction(30)
        self.info = SourceInfo("webcam", f"camera {self.index}", width, height, rate, None, True, False)
        self._start = time.monotonic()
        self._count = 0

    def _open(self) -> cv2.VideoCapture:
        # Fail fast, and without OpenCV's multi-line warnings, where the device node is missing.
        if os.name == "posix" and Path("/dev").is_dir() and not Path(f"/dev/video{self.index}").exists():
            found = list_cameras()
            hint = f"cameras found: {', '.join(map(str, found))}" if found else "no camera was found"
            raise SourceError(f"no camera at index {self.index} ({hint})")
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {self.index} cannot be opened (in use by another program, or no permission?)")
        return cap

    def read(self) -> Frame | None:
        ok, image = self._cap.read()
        if not ok or image is None:
            return None
        now = time.monotonic()
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        frame = Frame(image, self._count, now - self._start, now)
        self._count += 1
        return frame

    def reopen(self) -> None:
        self._cap.release()
        self._cap = self._open()

    def close(self) -> None:
        self._cap.release()


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


def _natural_key(path: str) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path)]


class FolderSource(FrameSource):
    """Images of a folder or a glob, in natural order (``img2`` before ``img10``).

    Every frame takes the first image's size (others are resized to it); pts = index / fps.
    """

    def __init__(self, spec: str, *, fps: float | Fraction = 30) -> None:
        if os.path.isdir(spec):
            files = [os.path.join(spec, n) for n in os.listdir(spec)]
        else:
            files = globlib.glob(os.path.expanduser(spec))
        files = sorted((f for f in files if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(f)),
                       key=_natural_key)
        if not files:
            raise SourceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {spec}")
        self.files = files
        first = self._load(0)
        height, width = first.shape[:2]
        self.info = SourceInfo("folder", spec, width, height, _as_rate(fps), len(files), False, True, spec)
        self._next = 0

    def _load(self, index: int) -> np.ndarray:
        path = self.files[index]
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"cannot read image {path}")
        return image

    def read(self) -> Frame | None:
        if self._next >= len(self.files):
            return None
        image = self._load(self._next)
        if image.shape[:2] != (self.info.height, self.info.width):
            image = cv2.resize(image, (self.info.width, self.info.height), interpolation=cv2.INTER_AREA)
        frame = Frame(image, self._next, self._next / float(self.info.rate), time.monotonic())
        self._next += 1
        return frame

    def seek(self, index: int) -> None:
        self._next = min(max(0, int(index)), len(self.files))


class DemoSource(FrameSource):
    """A deterministic synthetic scene: textured objects moving over a textured background.

    Frame ``i`` depends on ``i`` and the size only, so a run is reproducible and seekable. With
    ``realtime`` the source is live and paced at ``fps`` (like a camera); otherwise frames come as
    fast as they are read and ``frames`` (``None`` = endless) bounds the stream.
    """

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float | Fraction = 30, *, realtime: bool = True,
                 frames: int | None = None, seed: int = 0) -> None:
        width, height = int(size[0]), int(size[1])
        if width < 16 or height < 16:
            raise SourceError(f"demo size must be at least 16x16. Got {width}x{height}")
        rate = _as_rate(fps)
        if rate <= 0:
            raise SourceError(f"demo fps must be positive. Got {fps}")
        self.realtime = bool(realtime)
        self.info = SourceInfo("demo", "demo scene", width, height, rate, frames, self.realtime, True)
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        bg = 70 + 25 * np.sin(xx / 29.0) * np.cos(yy / 37.0) + 15 * np.sin((xx + yy) / 61.0)
        bg = np.stack([bg * 0.8, bg * 0.95, bg], axis=-1) + rng.normal(0, 4, (height, width, 3))
        self._background = np.clip(bg, 0, 255).astype(np.uint8)
        s = max(8, min(width, height) // 5)
        self._objects = [self._sprite(s, kind, rng) for kind in ("checker", "disc", "stripes")]
        self._paths = [(0.9, 1.3, 0.0), (1.7, 0.7, 1.9), (0.5, 1.1, 3.7)]  # Lissajous frequencies, phase
        self._next = 0
        self._start = time.monotonic()

    @staticmethod
    def _sprite(s: int, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        yy, xx = np.mgrid[0:s, 0:s]
        if kind == "checker":
            pat = ((yy // max(2, s // 8) + xx // max(2, s // 8)) % 2).astype(np.float32)
            img = np.stack([230 * pat + 20, 60 + 120 * (1 - pat), 200 * pat], axis=-1)
            mask = np.ones((s, s), bool)
        elif kind == "disc":
            r = s / 2
            d = np.hypot(yy - r + 0.5, xx - r + 0.5)
            mask = d < r
            img = np.stack([40 + 0 * d, 200 - 100 * d / r, 250 - 60 * np.cos(d / 2.0)], axis=-1)
        else:
            pat = (np.sin(xx / 2.0 + yy / 3.0) > 0).astype(np.float32)
            img = np.stack([240 * pat, 240 * pat, 30 + 0 * pat], axis=-1)
            mask = np.ones((s, s), bool)
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        return img, mask

    def render(self, index: int) -> np.ndarray:
        """Frame ``index`` of the scene, ``(H, W, 3)`` uint8 BGR."""
        h, w = self.info.height, self.info.width
        image = self._background.copy()
        t = index / float(self.info.rate)
        for (sprite, mask), (fx, fy, phase) in zip(self._objects, self._paths, strict=True):
            s = sprite.shape[0]
            x = int((w - s) * (0.5 + 0.5 * math.sin(fx * t + phase)))
            y = int((h - s) * (0.5 + 0.5 * math.sin(fy * t + 2 * phase)))
            region = image[y : y + s, x : x + s]
            region[mask] = sprite[mask]
        return image

    def read(self) -> Frame | None:
        count = self.info.frame_count
        if count is not None and self._next >= count:
            return None
        if self.realtime:
            due = self._start + self._next / float(self.info.rate)
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                # Behind schedule (a slow reader): a camera does not wait, it skips ahead.
                self._next = max(self._next, int((now - self._start) * float(self.info.rate)))
        index = self._next
        frame = Frame(self.render(index), index, index / float(self.info.rate), time.monotonic())
        self._next += 1
        return frame

    def seek(self, index: int) -> None:
        self._next = max(0, int(index))
        self._start = time.monotonic() - self._next / float(self.info.rate)


def list_cameras(max_index: int = 4) -> list[int]:
    """Indices in ``[0, max_index)`` of the cameras that open (device nodes checked first on Linux)."""
    _quiet_opencv()
    found = []
    for i in range(max_index):
        if os.name == "posix" and Path("/dev").is_dir() and not Path(f"/dev/video{i}").exists():
            continue
        cap = cv2.VideoCapture(i)
        try:
            if cap.isOpened():
                found.append(i)
        finally:
            cap.release()
    return found


def _is_glob(spec: str) -> bool:
    return any(c in spec for c in "*?[")


def open_source(
    spec: str | int,
    *,
    demo_size: tuple[int, int] = (640, 480),
    demo_fps: float = 30.0,
    realtime: bool | None = None,
    demo_frames: int | None = None,
    folder_fps: float = 30.0,
) -> FrameSource:
    """Open a frame source from a user's description.

    Args:
        spec: ``0``, ``"1"``... a webcam index; ``"demo"`` the built-in synthetic scene;
            ``rtsp://``, ``http(s)://``... a network stream; a folder or a glob of images; anything
            else a video file.
        demo_size: ``(width, height)`` of the demo scene.
        demo_fps: frame rate of the demo scene.
        realtime: ``None`` = the natural mode (cameras and streams live, files and folders as fast
            as read, the demo paced like a camera); ``True`` paces the demo (``False``: as fast as
            read). Files are never paced here: :class:`Capture` consumers pace them when needed.
        demo_frames: length of the demo stream (``None`` = endless).
        folder_fps: nominal rate given to image sequences.

    Raises:
        SourceError: the source cannot be opened (one clear line).
    """
    if isinstance(spec, bool):
        raise SourceError(f"not a source: {spec!r}")
    if isinstance(spec, int):
        return WebcamSource(spec)
    text = str(spec).strip()
    if not text:
        raise SourceError("empty source; give a webcam index, a file, a folder, a URL or 'demo'")
    if text.isdigit():
        return WebcamSource(int(text))
    if text.lower() == "demo":
        return DemoSource(demo_size, demo_fps, realtime=True if realtime is None else realtime, frames=demo_frames)
    if text.lower().startswith(STREAM_SCHEMES):
        return StreamSource(text)
    path = os.path.expanduser(text)
    if os.path.isdir(path) or (_is_glob(path) and not os.path.exists(path)):
        return FolderSource(path, fps=folder_fps)
    if not os.path.exists(path):
        raise SourceError(f"no such file: {text}")
    if not os.path.isfile(path):
        raise SourceError(f"not a regular file: {text}")
    if os.path.getsize(path) == 0:
        raise SourceError(f"{text} is empty (0 bytes)")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return FolderSource(path, fps=folder_fps)
    return FileSource(path)


# ------------------------------------------------------------------------------------------------
# Threaded capture
# ------------------------------------------------------------------------------------------------
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

    def __iter__(self):
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
