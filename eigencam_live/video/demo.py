"""The built-in demo: a real clip shipped in the package, looping like a camera (:class:`DemoClip`,
``"demo"``), and a synthetic scene for tests (:class:`DemoSource`, ``"scene"``)."""

from __future__ import annotations

import math
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource, SourceInfo, as_rate

__all__ = ["DEMO_CLIP", "DemoClip", "DemoSource"]

#: The clip ``"demo"`` plays: bottles on a conveyor, 640x360, 29.83 fps, 40 s (Intel IoT DevKit sample
#: videos, CC BY 4.0; see ``assets/ATTRIBUTION.md``).
DEMO_CLIP = Path(__file__).resolve().with_name("assets") / "demo.mp4"


class DemoClip(FrameSource):
    """The demo for trying the app without a camera: a real clip, looping, paced at its own rate and
    delivered like a camera's frames (live: the newest frame wins; timestamps keep increasing across
    loops, so a recording of it plays straight through).

    Unlike a camera it can wait (:attr:`holdable`): read late, it goes on from the frame it
    stopped at, its clock started again there.

    Args:
        path: the clip (default :data:`DEMO_CLIP`).
        realtime: pace frames at the clip's rate (``False``: as fast as read).
        frames: stop after this many frames (``None`` = endless).
    """

    holdable = True

    def __init__(self, path: str | Path = DEMO_CLIP, *, realtime: bool = True, frames: int | None = None) -> None:
        from .files import FileSource

        self._file = FileSource(str(path))
        clip = self._file.info
        self.realtime = bool(realtime)
        self.info = SourceInfo("demo", "demo clip (bottles on a conveyor)", clip.width, clip.height, clip.rate,
                               frames, self.realtime, False)
        self._frames = frames
        self._index = 0
        self._offset = 0.0  # the pts the current loop starts at
        self._last = 0.0  # the last pts delivered
        self._start = time.monotonic()
        self._closed = threading.Event()

    def read(self) -> Frame | None:
        if self._closed.is_set() or (self._frames is not None and self._index >= self._frames):
            return None
        frame = self._file.read()
        if frame is None:  # the end of the clip: once more from its start, the clock running on
            self._offset = self._last + 1.0 / float(self.info.rate)
            self._file.seek(0)
            frame = self._file.read()
            if frame is None:
                return None
        pts = self._offset + frame.pts
        if self.realtime:
            now = time.monotonic()
            due = self._start + pts
            if due - now > 0:
                if self._closed.wait(due - now):  # close() ends the wait at once
                    return None
            elif now - due > 0.25:  # far behind (a busy machine): the clock restarts here
                self._start = now - pts
        self._last = pts
        out = Frame(frame.image, self._index, pts, time.monotonic())
        self._index += 1
        return out

    def interrupt(self) -> None:
        self._closed.set()

    def close(self) -> None:
        self._closed.set()
        self._file.close()


class DemoSource(FrameSource):
    """A deterministic synthetic scene: textured objects moving over a textured background.

    Frame ``i`` depends on ``i`` and the size only, so a run is reproducible and seekable. With
    ``realtime`` the source is live and paced at ``fps`` like a camera, and like a camera's its
    timestamps are the times its frames were made (seconds since it opened): the capture plays them
    on arrival, with no clock of their own to hold them to. Otherwise frames come as fast as they
    are read, frame ``i`` at ``i / fps``, and ``frames`` (``None`` = endless) bounds the stream.
    """

    def __init__(self, size: tuple[int, int] = (640, 480), fps: float | Fraction = 30, *, realtime: bool = True,
                 frames: int | None = None, seed: int = 0) -> None:
        width, height = int(size[0]), int(size[1])
        if width < 16 or height < 16:
            raise SourceError(f"demo size must be at least 16x16. Got {width}x{height}")
        rate = as_rate(fps)
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
        self._start = self._opened = time.monotonic()

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
        image = self.render(index)
        made = time.monotonic()
        frame = Frame(image, index, made - self._opened if self.realtime else index / float(self.info.rate), made)
        self._next += 1
        return frame

    def seek(self, index: int) -> None:
        self._next = max(0, int(index))
        self._start = time.monotonic() - self._next / float(self.info.rate)
