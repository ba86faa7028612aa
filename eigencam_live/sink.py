"""Video output: H.264 (yuv420p) MP4 through PyAV, at the input's exact rate, with its audio.

* The rate is a :class:`~fractions.Fraction` (29.97 stays 30000/1001) and every frame may carry its
  own timestamp, so variable frame rate survives.
* The audio stream of ``audio_from`` is copied packet by packet (no re-encoding), interleaved with
  the video as it is written; codecs MP4 cannot hold (PCM, Vorbis...) are re-encoded to AAC and
  :attr:`VideoSink.audio_note` says so.
* The file is written as ``.NAME.part.mp4`` next to the target and renamed into place by
  :meth:`VideoSink.close` only; :meth:`VideoSink.abort` removes it. ``+faststart`` puts the index
  first so browsers can play while downloading.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import SinkError

__all__ = ["MP4_AUDIO_CODECS", "TIME_BASE", "VideoSink"]

#: Audio codecs copied into MP4 unchanged; others are re-encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac", "mp2"})

#: Output video time base: 1/90000 s represents NTSC (1001/30000 s = 3003 ticks), PAL and film
#: frame durations exactly.
TIME_BASE = Fraction(1, 90000)


class VideoSink:
    """Write BGR frames to an H.264 MP4 file.

    Args:
        path: the target file (``.mp4``).
        width, height: frame size. H.264 in yuv420p needs even sides: an odd side is padded by one
            pixel (edge repeated).
        fps: nominal rate (Fraction for exactness; a float such as 29.97 is read as 30000/1001).
        audio_from: a media file whose first audio stream is copied unchanged.
        overwrite: replace an existing ``path``; otherwise :class:`SinkError`.
        crf, preset: libx264 quality and speed.

    Usage::

        with VideoSink("out.mp4", width=w, height=h, fps=info.rate, audio_from="in.mp4") as sink:
            sink.write(image, pts=frame.pts)

    Leaving the ``with`` block by an exception aborts (nothing is renamed into place) except for
    ``KeyboardInterrupt``, which finishes the file with the frames written so far.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        width: int,
        height: int,
        fps: float | Fraction,
        audio_from: str | os.PathLike | None = None,
        overwrite: bool = False,
        crf: int = 20,
        preset: str = "veryfast",
    ) -> None:
        import av

        from .sources import _as_rate

        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        if self.width < 2 or self.height < 2:
            raise SinkError(f"frame size must be at least 2x2. Got {self.width}x{self.height}")
        self.rate = _as_rate(fps)
        if self.rate <= 0:
            raise SinkError(f"fps must be positive. Got {fps}")
        if self.path.exists() and not overwrite:
            raise SinkError(f"{self.path} exists (use --force to overwrite)")
        if self.path.is_dir():
            raise SinkError(f"{self.path} is a directory")
        parent = self.path.parent
        if not parent.is_dir():
            raise SinkError(f"output folder {parent} does not exist")
        if audio_from is not None and _same_file(audio_from, self.path):
            raise SinkError(f"output {self.path} is the input: refusing to write over it")
        self.frames_written = 0
        self.audio_packets = 0
        self.duration = 0.0
        self._closed = False
        self._last_pts = -1
        self._first_pts: float | None = None
        self.tmp_path = parent / f".{self.path.stem}.part{os.getpid()}{self.path.suffix or '.mp4'}"
        try:
            # Create the file now: FFmpeg opens it only when the first packet is muxed, and an
            # unwritable folder must fail here, not after the first frames were computed.
            self.tmp_path.touch()
            self._out = av.open(str(self.tmp_path), "w", format="mp4", options={"movflags": "+faststart"})
        except (OSError, av.FFmpegError) as exc:
            self.tmp_path.unlink(missing_ok=True)
            raise SinkError(f"cannot write in {parent}: {getattr(exc, 'strerror', None) or exc}") from exc
        try:
            self._video = self._out.add_stream("libx264", rate=self.rate)
            self._video.width = self.width + self.width % 2
            self._video.height = self.height + self.height % 2
            self._video.pix_fmt = "yuv420p"
            self._video.time_base = TIME_BASE
            self._video.codec_context.time_base = TIME_BASE
            self._video.options = {"crf": str(int(crf)), "preset": preset}
            self._audio_in = None
            self._audio = None
            self._audio_packets = None
            self._pending = None
            if audio_from is not None:
                self._open_audio(str(audio_from))
        except BaseException:
            self._discard()
            raise

    # -- audio passthrough -----------------------------------------------------------------------
    def _open_audio(self, source: str) -> None:
        import av

        try:
            container = av.open(source)
        except (OSError, av.FFmpegError):
            return  # the video source reports unreadable inputs; no audio then
        if not container.streams.audio:
            container.close()
            return
        stream = container.streams.audio[0]
        name = stream.codec_context.name
        try:
            if name in MP4_AUDIO_CODECS:
                self._audio = self._out.add_stream_from_template(stream)
            else:
                # PCM (.mov, .avi), Vorbis (.webm)...: MP4 cannot hold them; AAC is what plays everywhere.
                rate = stream.codec_context.sample_rate or 48000
                self._audio = self._out.add_stream("aac", rate=rate)
                self._audio.layout = stream.codec_context.layout
                self._decoder = stream.codec_context
                self.audio_note = f"audio re-encoded from {name} to AAC (MP4 cannot hold {name})"
        except (ValueError, av.FFmpegError) as exc:
            container.close()  # the video is still written
            self._audio = None
            self.audio_note = f"audio ({name}) dropped: {exc}"
            return
        self._audio_in = container
        self._audio_stream = stream
        self._audio_packets = container.demux(stream)

    #: set when the input's audio could not be copied unchanged (re-encoded or dropped), for the user.
    audio_note: str | None = None
    _decoder = None  # the input's audio decoder when re-encoding

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Copy input audio packets with pts up to ``seconds`` (``None`` = all of them)."""
        if self._audio_packets is None:
            return
        while True:
            packet = self._pending
            if packet is None:
                try:
                    packet = next(self._audio_packets)
                except (StopIteration, EOFError):
                    self._audio_packets = None
                    return
                except Exception:  # a damaged tail of the input: keep what was copied
                    self._audio_packets = None
                    return
                if packet.dts is None or packet.size == 0:
                    continue
            if seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            self._pending = None
            if self._decoder is None:
                packet.stream = self._audio
                self._out.mux(packet)
                self.audio_packets += 1
            else:
                for frame in self._decoder.decode(packet):
                    frame.pts = None  # the encoder numbers samples consecutively
                    self._mux_encoded(self._audio.encode(frame))

    def _mux_encoded(self, packets: list) -> None:
        for packet in packets:
            self._out.mux(packet)
            self.audio_packets += 1

    # -- video -----------------------------------------------------------------------------------
    def write(self, image: np.ndarray, pts: float | None = None) -> None:
        """Append one frame.

        Args:
            image: ``(height, width, 3)`` uint8 BGR.
            pts: the frame's timestamp in seconds (the input's, to keep variable frame rate and
                audio sync); ``None`` = the next frame at the nominal rate.
        """
        import av

        if self._closed:
            raise SinkError(f"{self.path} is already closed")
        if image.dtype != np.uint8 or image.shape != (self.height, self.width, 3):
            raise ValueError(f"image must be uint8 with a shape of {(self.height, self.width, 3)}. "
                             f"Got {image.dtype} {image.shape}")
        if image.shape[0] % 2 or image.shape[1] % 2:
            image = np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)), mode="edge")
        if pts is None:
            seconds = float((self._first_pts or 0.0) + self.frames_written / self.rate)
        else:
            seconds = float(pts)
        if self._first_pts is None:
            self._first_pts = seconds
        ticks = int(round(seconds / TIME_BASE))
        if ticks <= self._last_pts:  # timestamps must increase strictly
            ticks = self._last_pts + 1
        self._last_pts = ticks
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = ticks
        frame.time_base = TIME_BASE
        try:
            for packet in self._video.encode(frame):
                self._out.mux(packet)
            self._mux_audio_until(seconds)
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from exc
        self.frames_written += 1
        self.duration = seconds - self._first_pts + float(1 / self.rate)

    def close(self, *, audio_to_end: bool = True) -> Path:
        """Finish the file and rename it into place. Idempotent.

        Args:
            audio_to_end: copy the rest of the input's audio; ``False`` (a partial output) copies
                audio only up to the end of the last frame written.

        Returns:
            the final path.

        Raises:
            SinkError: nothing was written (the temporary file is removed), or the disk failed.
        """
        import av

        if self._closed:
            return self.path
        self._closed = True
        try:
            if self.frames_written == 0:
                raise SinkError(f"no frames were written; {self.path} was not created")
            for packet in self._video.encode(None):
                self._out.mux(packet)
            end = None if audio_to_end else (self._first_pts or 0.0) + self.duration
            self._mux_audio_until(end)
            if self._decoder is not None:
                self._mux_encoded(self._audio.encode(None))
            self._out.close()
            self._close_audio()
            os.replace(self.tmp_path, self.path)
        except (OSError, av.FFmpegError) as exc:
            self._discard()
            raise SinkError(f"cannot finish {self.path}: {getattr(exc, 'strerror', None) or exc}") from exc
        except BaseException:
            self._discard()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and remove the temporary file; the target is left untouched. Idempotent."""
        self._closed = True
        self._discard()

    def _close_audio(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None
        self._audio_packets = None

    def _discard(self) -> None:
        try:
            self._out.close()
        except Exception:
            pass
        self._close_audio()
        try:
            self.tmp_path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None or (exc_type is KeyboardInterrupt and self.frames_written):
            self.close(audio_to_end=exc_type is None)
        else:
            self.abort()


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)
