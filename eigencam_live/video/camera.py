"""Webcams, through OpenCV (V4L2 on Linux)."""

from __future__ import annotations

import math
import os
import time
from fractions import Fraction
from pathlib import Path

import cv2

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource, SourceInfo, as_rate

__all__ = ["WebcamSource", "list_cameras"]


def _quiet_opencv() -> None:
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except Exception:  # older builds without the logging module
        pass


def _no_device_node(index: int) -> bool:
    """``True`` where the OS shows for certain that there is no camera ``index`` (Linux: no /dev/videoN)."""
    return os.name == "posix" and Path("/dev").is_dir() and not Path(f"/dev/video{index}").exists()


class WebcamSource(FrameSource):
    """A camera by index. Live: pts = seconds since opening."""

    def __init__(self, index: int) -> None:
        self.index = int(index)
        _quiet_opencv()
        self._cap = self._open()
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        rate = as_rate(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else Fraction(30)
        self.info = SourceInfo("webcam", f"camera {self.index}", width, height, rate, None, True, False)
        self._start = time.monotonic()
        self._count = 0

    def _open(self) -> cv2.VideoCapture:
        # Fail fast, and without OpenCV's multi-line warnings, where the device node is missing.
        if _no_device_node(self.index):
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


def list_cameras(max_index: int = 4) -> list[int]:
    """Indices in ``[0, max_index)`` of the cameras that open (device nodes checked first on Linux)."""
    _quiet_opencv()
    found = []
    for i in range(max_index):
        if _no_device_node(i):
            continue
        cap = cv2.VideoCapture(i)
        try:
            if cap.isOpened():
                found.append(i)
        finally:
            cap.release()
    return found
