"""From a user's description (``0``, ``"clip.mp4"``, ``"rtsp://..."``, ``"frames/*.png"``,
``"demo"``) to the :class:`FrameSource` that reads it."""

from __future__ import annotations

import os
import re
import threading

from eigencam_live.errors import SourceError

from .camera import WebcamSource
from .demo import DemoClip, DemoSource
from .files import FileSource
from .frames import FrameSource
from .images import IMAGE_EXTENSIONS, FolderSource
from .streams import STREAM_SCHEMES, StreamSource, shown_url

__all__ = ["local_path", "open_source"]


def _is_glob(spec: str) -> bool:
    return any(c in spec for c in "*?[")


def local_path(text: str) -> str:
    """``text``, or the path a file manager's ``file://`` URL of a local file names."""
    if text[:7].lower() != "file://":
        return text
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(text).path)


def open_source(
    spec: str | int,
    *,
    demo_size: tuple[int, int] = (640, 480),
    demo_fps: float = 30.0,
    realtime: bool | None = None,
    demo_frames: int | None = None,
    folder_fps: float = 30.0,
    cancel: threading.Event | None = None,
) -> FrameSource:
    """Open a frame source from a user's description.

    Args:
        spec: ``0``, ``"1"``... a webcam index; ``"demo"`` the built-in clip (:class:`DemoClip`,
            looping); ``"scene"`` the synthetic scene (:class:`DemoSource`, for tests);
            ``rtsp://``, ``http(s)://``... a network stream; a folder or a glob of images; anything
            else a video file.
        demo_size: ``(width, height)`` of the synthetic scene.
        demo_fps: frame rate of the synthetic scene.
        realtime: ``None`` = the natural mode (cameras and streams live, files and folders as fast
            as read, the demo paced like a camera); ``True`` paces the demo (``False``: as fast as
            read). Files are never paced here: :class:`Capture` consumers pace them when needed.
        demo_frames: length of the demo clip's or the scene's stream (``None`` = endless).
        folder_fps: nominal rate given to image sequences.
        cancel: network streams: set it from another thread to abort opening (this call then
            raises :class:`SourceError` within about 0.1 s) or, later, reading.

    Raises:
        SourceError: the source cannot be opened (one clear line).
    """
    if isinstance(spec, bool):
        raise SourceError(f"not a source: {spec!r}")
    if isinstance(spec, int):
        return WebcamSource(spec)
    text = str(spec).strip()
    if not text:
        raise SourceError("empty source; give a webcam index, a file, a folder, a URL, 'demo' or 'scene'")
    if text.isdigit():
        return WebcamSource(int(text))
    if text.lower() == "demo":
        return DemoClip(realtime=True if realtime is None else realtime, frames=demo_frames)
    if text.lower() == "scene":
        return DemoSource(demo_size, demo_fps, realtime=True if realtime is None else realtime, frames=demo_frames)
    if text.lower().startswith(STREAM_SCHEMES):
        return StreamSource(text, cancel=cancel)
    text = local_path(text)
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if scheme:
        raise SourceError(f"{shown_url(text)}: {scheme.group(1)}:// is not a stream eigencam-live opens; it opens "
                          f"{', '.join(s[:-3] for s in STREAM_SCHEMES)} URLs, files and folders")
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

