"""Recording the frames the app shows to an H.264 MP4. No Qt here (a test checks it).

:class:`~eigencam_live.video.VideoSink` already pads odd sizes and keeps timestamps strictly
increasing; this class only decides when the file opens, its origin of time and how a frame of
another size fits in.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from eigencam_live.errors import SinkError
from eigencam_live.video import VideoSink

__all__ = ["Recorder", "letterbox", "stamp_timecode"]


class Recorder:
    """Writes shown frames to one MP4 at a time.

    The file opens on the first frame written after :meth:`start`, at that frame's size; a later
    frame of another size (the view changed to side-by-side) is letterboxed into it. Timestamps
    count from the first frame's, so the video starts at 0 whatever the source's clock says.

    Usage::

        rec = Recorder()
        rec.start("out.mp4", fps=30.0)
        rec.write(image, pts)   # (H, W, 3) uint8 BGR, seconds
        rec.stop()              # -> Path of the finished file, None when nothing was written
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self.fps = 30.0
        self._sink: VideoSink | None = None
        self._t0 = 0.0

    @property
    def active(self) -> bool:
        """A recording was started and not stopped (its file may not be open yet)."""
        return self.path is not None

    @property
    def frames_written(self) -> int:
        return self._sink.frames_written if self._sink is not None else 0

    def start(self, path: str | Path, fps: float) -> None:
        """Record to ``path`` at nominal rate ``fps`` (a float such as 29.97 is kept exact)."""
        if self.active:
            raise SinkError(f"already recording to {self.path}; stop first")
        if not fps or fps <= 0:
            raise SinkError(f"fps must be positive. Got {fps}")
        self.path, self.fps, self._sink = Path(path), float(fps), None

    def write(self, image: np.ndarray, pts: float) -> None:
        """Append ``image`` (``(H, W, 3)`` uint8 BGR) shown at ``pts`` seconds; no-op when not recording.

        Raises:
            SinkError: the file cannot be opened or written (the recording stays active until
                :meth:`stop`, which then writes nothing more).
        """
        if self.path is None:
            return
        if self._sink is None:
            height, width = image.shape[:2]
            try:
                self._sink = VideoSink(self.path, width=width, height=height, fps=self.fps, overwrite=True)
            except Exception as exc:
                raise SinkError(f"cannot record to {self.path}: {exc}") from exc
            self._t0 = float(pts)
        sink = self._sink
        if image.shape[:2] != (sink.height, sink.width):
            image = letterbox(image, sink.width, sink.height)
        try:
            sink.write(image, max(0.0, float(pts) - self._t0))
        except Exception as exc:
            raise SinkError(f"recording failed: {exc}") from exc

    def stop(self) -> Path | None:
        """Finish the file (idempotent); returns its path, ``None`` when no recording ran.

        Raises:
            SinkError: finishing failed (the partial file is removed by the sink).
        """
        path, sink = self.path, self._sink
        self.path, self._sink = None, None
        if sink is not None:
            sink.close()
        return path


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit ``image`` (``(H, W, 3)`` uint8) into ``width x height`` keeping its aspect, black bars around."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((height, width, 3), np.uint8)
    y, x = (height - nh) // 2, (width - nw) // 2
    out[y : y + nh, x : x + nw] = small
    return out


def stamp_timecode(image: np.ndarray, number: int, seconds: float) -> np.ndarray:
    """A copy of ``image`` (``(H, W, 3)`` uint8 BGR) with ``"#number  mm:ss.mmm"`` at its bottom left,
    white on a dark box, sized to the image (readable in a recording of any size)."""
    out = image.copy()
    minutes, rest = divmod(max(0.0, float(seconds)), 60.0)
    text = f"#{number}  {int(minutes):02d}:{rest:06.3f}"
    scale = max(0.4, out.shape[0] / 720.0)
    thickness = max(1, int(round(scale * 1.5)))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(3, int(6 * scale))
    y = out.shape[0] - pad
    cv2.rectangle(out, (0, y - h - base - pad), (w + 2 * pad, out.shape[0]), (0, 0, 0), thickness=-1)
    cv2.putText(out, text, (pad, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
