"""Still images of a folder or a glob, played as a video."""

from __future__ import annotations

import glob as globlib
import os
import re
import time
from fractions import Fraction

import cv2
import numpy as np

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource, SourceInfo, as_rate

__all__ = ["IMAGE_EXTENSIONS", "FolderSource"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


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
        self.info = SourceInfo("folder", spec, width, height, as_rate(fps), len(files), False, True, spec)
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
