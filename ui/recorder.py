"""Recording the frames the app shows to an H.264 MP4. No Qt here (a test checks it).

:class:`~eigencam_live.video.VideoSink` already pads odd sizes and keeps timestamps strictly
increasing, and copies a stretch of a file's audio; this class only decides when the file opens,
its origin of time, what a jump in the source's time does and how a frame of another size fits in.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from eigencam_live.errors import SinkError
from eigencam_live.renames import free_path
from eigencam_live.video import VideoSink

__all__ = ["MAX_GAP_S", "Recorder", "letterbox", "stamp_timecode"]

#: A frame further than this (seconds) past the one before it, or not after it, is a jump (a seek,
#: a live source resumed after a pause): the recording goes on without the time in between.
MAX_GAP_S = 1.0


class Recorder:
    """Writes shown frames to one MP4 at a time, with the source file's sound when it has some.

    The file opens on the first frame written after :meth:`start`, at that frame's size or the
    size given to :meth:`start` (a folder's images differ: one that fits them all); a frame of
    another size (the view changed to side-by-side) is letterboxed into it. Timestamps
    count from the first frame's, so the video starts at 0 whatever the source's clock says.

    Audio (``audio_from``: the file being shown): the stretch of its audio from the first frame's
    pts to the end of the last frame, on the same clock as the frames (so in sync), copied when MP4
    can hold the codec and re-encoded to AAC otherwise, exactly as ``annotate`` does; cut at audio
    packet boundaries, so it covers the recorded span within one audio frame.

    The recording covers what was shown, on the source's clock:

    * Pausing adds nothing: a file's clock stops while paused, and the frames after the pause
      follow on, with their sound.
    * A jump (a seek while recording, a live source resumed after a pause: a frame not after the
      one before it, or more than :data:`MAX_GAP_S` past it) is cut out: the frame after it is
      placed one frame (at ``fps``) after the last one written, and the audio goes on from that
      frame's time in the source (at most one audio frame is left out at the cut). Smaller gaps
      stay as they are: the picture holds and the sound plays on, as in the source.

    Usage::

        rec = Recorder()
        rec.start("out.mp4", fps=30.0, audio_from="in.mp4")
        rec.write(image, pts)   # (H, W, 3) uint8 BGR, seconds (the source's)
        rec.stop()              # -> Path of the finished file, None when nothing was written
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self.fps = 30.0
        self.audio_from: str | None = None
        self._sink: VideoSink | None = None
        self._finished: VideoSink | None = None  # the last recording's, once stopped (its notes)
        self.size: tuple[int, int] | None = None  # (width, height) asked for; None: the first frame's
        self._shift = 0.0  # source seconds minus recording seconds
        self._last: tuple[float, float] | None = None  # the last frame's (source, recording) seconds
        self.aspect = Fraction(1)  # the shape of the source's pixels (anamorphic video: not 1)

    @property
    def active(self) -> bool:
        """A recording was started and not stopped (its file may not be open yet)."""
        return self.path is not None

    @property
    def frames_written(self) -> int:
        return self._sink.frames_written if self._sink is not None else 0

    @property
    def audio_packets(self) -> int:
        """Audio packets written so far (after :meth:`stop`: in the file just finished); 0: video only."""
        sink = self._sink or self._finished
        return sink.audio_packets if sink is not None else 0

    @property
    def audio_note(self) -> str | None:
        """Set when the source's audio was re-encoded or dropped (after :meth:`stop`: for the file
        just finished)."""
        sink = self._sink or self._finished
        return sink.audio_note if sink is not None else None

    def start(self, path: str | Path, fps: float, audio_from: str | Path | None = None,
              aspect: Fraction = Fraction(1), size: tuple[int, int] | None = None) -> None:
        """Record to ``path`` at nominal rate ``fps`` (a float such as 29.97 is kept exact), with the
        audio of ``audio_from`` (the file shown; ``None``: video only, as for live sources); the
        pixels' ``aspect`` (width / height) is the source's (anamorphic video); ``size``
        ``(width, height)`` of the file, ``None``: the first frame's."""
        if self.active:
            raise SinkError(f"already recording to {self.path}; stop first")
        if not fps or fps <= 0:
            raise SinkError(f"fps must be positive. Got {fps}")
        self.path, self.fps, self._sink, self._finished, self._last = Path(path), float(fps), None, None, None
        self.audio_from = None if audio_from is None else str(audio_from)
        self.aspect = Fraction(aspect)
        self.size = size

    def write(self, image: np.ndarray, pts: float) -> None:
        """Append ``image`` (``(H, W, 3)`` uint8 BGR) shown at ``pts`` seconds; no-op when not recording.

        Raises:
            SinkError: the file cannot be opened or written (the recording stays active until
                :meth:`stop`, which then writes nothing more).
        """
        if self.path is None:
            return
        pts = float(pts)
        if self._sink is None:
            width, height = self.size or image.shape[1::-1]
            self.path = free_path(self.path)  # taken since start (another app's recording): beside it
            try:
                # never replaces: another app recording in the same second gets NAME-2 at the end
                self._sink = VideoSink(self.path, width=width, height=height, fps=self.fps, overwrite=False,
                                       audio_from=self.audio_from, audio_start=pts, aspect=self.aspect)
            except Exception as exc:
                raise SinkError(f"cannot record to {self.path}: {exc}") from exc
            self._shift = pts
        sink = self._sink
        if image.shape[:2] != (sink.height, sink.width):
            image = letterbox(image, sink.width, sink.height)
        try:
            if self._last is not None and not 0.0 < pts - self._last[0] <= MAX_GAP_S:
                at = self._last[1] + 1.0 / self.fps  # a jump: cut out
                self._shift = pts - at
                sink.cue_audio(pts, at)
            at = pts - self._shift
            sink.write(image, at)
            self._last = (pts, at)
        except Exception as exc:
            raise SinkError(f"recording failed: {exc}") from exc

    def stop(self) -> Path | None:
        """Finish the file (idempotent); returns its path (``NAME-2``... where a file took the name
        while it was written), ``None`` when no recording ran.

        Raises:
            SinkError: finishing failed (the partial file is removed by the sink).
        """
        path, sink = self.path, self._sink
        self.path, self._sink, self._finished = None, None, sink
        if sink is not None:
            return sink.close(audio_to_end=False)  # the sound of the recorded span only
        return path


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit ``image`` (``(H, W, 3)`` uint8) into ``width x height`` keeping its aspect, black bars around."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    # INTER_AREA to shrink; enlarged by it a picture comes out in blocks (a small image of a folder)
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    out[y : y + nh, x : x + nw] = small
    return out


#: The smallest text scale of a timecode stamp (OpenCV's Hershey simplex: about 8 pixels tall).
_SMALLEST_STAMP = 0.35


def stamp_timecode(image: np.ndarray, number: int, seconds: float) -> np.ndarray:
    """A copy of ``image`` (``(H, W, 3)`` uint8 BGR) with ``"#number  mm:ss.mmm"`` at its bottom left,
    white on a dark box, sized to the image (readable in a recording of any size), and at most
    about half its width and a seventh of its height: on a picture too small for a readable stamp
    (text under 8 pixels tall: a 160 x 90 image, whose bottom it covered, or a 20 x 12 one, which
    it covered whole), none is drawn."""
    out = image.copy()
    minutes, rest = divmod(max(0.0, float(seconds)), 60.0)
    text = f"#{number}  {int(minutes):02d}:{rest:06.3f}"
    (w1, h1), base1 = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)
    fits = min(0.5 * out.shape[1] / (w1 + 12), 0.15 * out.shape[0] / (h1 + base1 + 12))
    scale = min(max(0.4, out.shape[0] / 720.0), fits)
    if scale < _SMALLEST_STAMP:
        return out
    thickness = max(1, int(round(scale * 1.5)))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(3, int(6 * scale))
    y = out.shape[0] - pad
    cv2.rectangle(out, (0, y - h - base - pad), (w + 2 * pad, out.shape[0]), (0, 0, 0), thickness=-1)
    cv2.putText(out, text, (pad, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
