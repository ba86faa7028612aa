"""The types every video module shares: a :class:`Frame`, what a source delivers
(:class:`SourceInfo`), the :class:`FrameSource` interface, and exact frame rates (:func:`as_rate`)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from eigencam_live.errors import SourceError

__all__ = ["Frame", "FrameSource", "SourceInfo", "as_rate"]


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR, owned by the consumer (the source never reuses it).
        index: 0-based frame number in the source (live sources: gaps show dropped frames).
        pts: seconds; the frame's timestamp in the stream (files: container pts; live sources:
            seconds since the source started).
        captured: ``time.monotonic()`` when the capture thread got it (for latency).
        duration: seconds the frame is shown, where the source says (a file's; a GIF's or a
            slideshow's last frame may be held for seconds); ``None``: until the next frame.
        note: what the source skipped right before this frame (a folder's unreadable images), to
            be said when this frame is shown, not when it was read ahead; else ``None``.
    """

    image: np.ndarray
    index: int
    pts: float
    captured: float
    duration: float | None = None
    note: str | None = None


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
        time_base: the container's clock for this stream (files and streams), e.g. 1/1000 s for
            Matroska; timestamps are multiples of it.
        rotation: degrees (0, 90, 180, 270, counter-clockwise) the coded picture was turned by to
            deliver it as displayed (a phone's display matrix); ``width`` and ``height`` are as displayed.
        aspect: the shape of one pixel as displayed, width / height (a video's sample aspect ratio:
            4/3 for anamorphic 16:9 in 1440x1080; 1 for square pixels, or where the source states none).
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
    time_base: Fraction | None = None
    rotation: int = 0
    aspect: Fraction = Fraction(1)

    @property
    def fps(self) -> float:
        """Nominal rate as a float (29.97002997...); use :attr:`rate` for exact arithmetic."""
        return float(self.rate)


def as_rate(value: float | Fraction | int) -> Fraction:
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


class FrameSource:
    """A synchronous frame reader. Subclasses set :attr:`info` and implement :meth:`read`.

    Attributes:
        info: what the source delivers.
        warning: set when the source ended early or lost data (e.g. a truncated file).
        holdable: a live source that can stop and go on where it stopped (the demo clip, not a
            camera): :meth:`Capture.hold <eigencam_live.video.Capture.hold>` pauses it by no longer
            reading it.
    """

    info: SourceInfo
    warning: str | None = None
    holdable: bool = False

    def read(self) -> Frame | None:
        """The next frame, or ``None`` at the end of the stream (live sources: connection lost)."""
        raise NotImplementedError

    def seek(self, index: int) -> None:
        """Make the next :meth:`read` return frame ``index`` (seekable sources only)."""
        raise SourceError(f"{self.info.kind} source {self.info.name!r} cannot seek")

    def reopen(self) -> None:
        """Reconnect a live source after it dropped out (raises :class:`SourceError` on failure)."""
        raise SourceError(f"{self.info.kind} source {self.info.name!r} cannot reconnect")

    def interrupt(self) -> None:
        """Abort, from another thread, a :meth:`read` or :meth:`reopen` that blocks (a network
        stream that went silent); the source is done for after this. Sources whose calls never
        block long do nothing."""

    def close(self) -> None:
        """Release the device or file. Idempotent."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def language_of(stream) -> str | None:
    """A PyAV stream's language tag (``eng``...), ``None`` where it is unset or ``und``."""
    language = stream.metadata.get("language")
    return None if language in (None, "und") else language
