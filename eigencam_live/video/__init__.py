"""Video in and out: frame sources, the threaded capture, and the H.264 writer.

Two layers on the input side:

* a :class:`FrameSource` reads synchronously (``read() -> Frame | None``); one class per kind,
  one module per family: :mod:`.camera` (webcams, OpenCV), :mod:`.files` (files and network
  streams, PyAV), :mod:`.images` (a folder or a glob of images), :mod:`.demo` (a synthetic scene);
  :func:`open_source` (:mod:`.sources`) picks one from a user's description;
* :class:`Capture` (:mod:`.capture`) drives a source from its own thread into a bounded buffer. Live
  sources are played out by their timestamps and drop (and count) only the frames a newer due one
  overtook; files and folders never drop (the capture thread waits for room) and end with an
  end-of-stream marker. A live source that drops out is reopened with a bounded backoff until it
  delivers again or the capture stops (:meth:`Capture.link_state` says how that stands); a stream
  blocked in a read is interrupted by :meth:`Capture.stop` (:mod:`.interrupt`).

Frames are uint8 BGR ``(H, W, 3)`` arrays owned by the consumer, as displayed (a phone's rotation
applied); rates are exact :class:`~fractions.Fraction` values (:func:`as_rate`: 29.97 stays
30000/1001; :mod:`.timing`: the nominal rate behind rounded container timestamps). On the output
side, :class:`VideoSink` (:mod:`.sink`) writes H.264 MP4 at that exact rate, every timestamp within
one tick of the input's clock, with the input's audio (:mod:`.audio`).
"""

from .audio import MP4_AUDIO_CODECS
from .camera import WebcamSource, list_cameras
from .capture import Capture, LinkState
from .demo import DEMO_CLIP, DemoClip, DemoSource
from .files import VIDEO_EXTENSIONS, FileSource
from .frames import Frame, FrameSource, SourceInfo, as_rate
from .images import IMAGE_EXTENSIONS, FolderSource
from .sink import TIME_BASE, VideoSink
from .sources import open_source
from .streams import STREAM_SCHEMES, STREAM_TIMEOUT, StreamSource, shown_url

__all__ = [
    "IMAGE_EXTENSIONS",
    "MP4_AUDIO_CODECS",
    "STREAM_SCHEMES",
    "STREAM_TIMEOUT",
    "TIME_BASE",
    "VIDEO_EXTENSIONS",
    "Capture",
    "DEMO_CLIP",
    "DemoClip",
    "DemoSource",
    "FileSource",
    "FolderSource",
    "Frame",
    "FrameSource",
    "LinkState",
    "SourceInfo",
    "StreamSource",
    "VideoSink",
    "WebcamSource",
    "as_rate",
    "list_cameras",
    "open_source",
    "shown_url",
]
