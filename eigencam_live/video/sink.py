"""Video output: H.264 (yuv420p) MP4 through PyAV, at the input's exact rate, with its audio.

* The rate is a :class:`~fractions.Fraction` (29.97 stays 30000/1001) and every frame may carry its
  own timestamp, so variable frame rate survives. Given the input's time base, the output clock
  holds both its ticks and the rate's frame duration exactly (:func:`~.timing.output_time_base`,
  also the muxer's ``movie_timescale``, so a non-zero start is exact too): every timestamp is
  within one input tick, and frames of a constant-rate input land on the exact grid of its rate
  (:class:`~.timing.RateGrid`).
* yuv420p H.264 has no odd sizes (even its cropping rectangle moves in steps of two pixels): an odd
  side is padded by one pixel (the edge repeated) and :attr:`VideoSink.size_note` says so.
* The audio stream of ``audio_from`` is copied by :class:`~.audio.AudioTrack`; where it had to be
  re-encoded or dropped, :attr:`VideoSink.audio_note` says so. A stretch of it (a recording that
  starts at ``audio_start`` of the input, and :meth:`VideoSink.cue_audio` after a jump) is the
  same path on a shifted clock.
* The file is written as ``.NAME.part.mp4`` next to the target and renamed into place by
  :meth:`VideoSink.close` only; :meth:`VideoSink.abort` removes it. ``+faststart`` puts the index
  first so browsers can play while downloading.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from eigencam_live.errors import SinkError
from eigencam_live.renames import rename_to_free_name

from .audio import AudioTrack
from .frames import as_rate
from .timing import DEFAULT_TIMESCALE, Joins, RateGrid, output_time_base
from .yuv import BT601, LIMITED, bgr_to_i420

__all__ = ["TIME_BASE", "VideoSink"]

#: Output video time base without an input clock to follow: 1/90000 s represents NTSC
#: (1001/30000 s = 3003 ticks), PAL and film frame durations exactly.
TIME_BASE = Fraction(1, DEFAULT_TIMESCALE)


#: Standard keys a player reads from Apple's own keys where a file has those ('mdta' keys).
_APPLE_KEYS = {"title": "title", "artist": "artist", "comment": "comment", "description": "description",
               "keywords": "keywords", "location": "location.ISO6709"}


def _mp4_tags(tags: dict[str, str]) -> tuple[dict[str, str], bool]:
    """An input's tags as an MP4 keeps them: ``(tags, whether 'mdta' keys are needed)``.

    A phone's own keys (``com.apple.quicktime.location.ISO6709``, ``...model``) exist only as
    'mdta' keys; with those on, FFmpeg writes every key so (not as iTunes atoms: a title is then
    read from ``com.apple.quicktime.title``), so the standard ones get their Apple names too.
    Matroska's ``DATE_RECORDED`` is MP4's ``date``."""
    tags = dict(tags)
    for key in [k for k in tags if k.upper() == "DATE_RECORDED"]:
        tags.setdefault("date", tags.pop(key))
    mdta = any("." in k for k in tags)
    if mdta:
        for key, apple in _APPLE_KEYS.items():
            if key in tags:
                tags.setdefault(f"com.apple.quicktime.{apple}", tags[key])
    return tags, mdta

class VideoSink:
    """Write BGR frames to an H.264 MP4 file.

    Args:
        path: the target file (``.mp4``).
        width, height: frame size. H.264 in yuv420p needs even sides: an odd side is padded by one
            pixel (edge repeated), and :attr:`size_note` says so.
        fps: nominal rate (Fraction for exactness; a float such as 29.97 is read as 30000/1001).
        time_base: the input's time base (``None``: live frames, no clock to follow). Timestamps
            are then kept within one of its ticks, and constant-rate frames put on the exact grid.
        audio_from: a media file whose first audio stream is copied unchanged.
        audio_start: the time (seconds, on ``audio_from``'s clock) of the audio that goes with this
            output's time 0, the audio before it left out; ``None``: the input's audio on its own
            clock, all of it (``annotate``: the frames keep the input's timestamps).
        joins: the video source's :class:`~eigencam_live.video.timing.Joins` (a transport's clock
            that jumps): the audio is shifted across each join as the frames were.
        overwrite: replace an existing ``path``; otherwise :class:`SinkError` where it exists at the
            start, and a file made there while this one was written is never replaced: this one is
            then named ``STEM-2``, ``STEM-3``... (:meth:`close` returns the name).
        crf, preset: libx264 quality and speed.
        threads: libx264's threads (0: its own choice, through PyAV sliced threads, 2 on 2 cores);
            ``annotate`` shares the cores with the network (:func:`~eigencam_live.options.headless_threads`).
        tags: the file's own metadata to keep (the input's: ``creation_time``, ``location``,
            ``title``...; :attr:`~.files.FileSource.tags`), so that a photo library files the
            output under the day and place it was filmed.
        language: the video track's language tag (the input's, :attr:`~.files.FileSource.language`).
        colour_tags: ``(color_primaries, color_trc)`` to state (the input's,
            :attr:`~.files.FileSource.colour_tags`); the matrix is BT.601's, limited range.
        aspect: the shape of a pixel, width / height (the input's sample aspect ratio, as
            :attr:`~.frames.SourceInfo.aspect`): written into the stream, so that players show an
            anamorphic input's picture as wide as the input's.

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
        time_base: Fraction | None = None,
        audio_from: str | os.PathLike | None = None,
        audio_start: float | None = None,
        joins: Joins | None = None,
        overwrite: bool = False,
        crf: int = 20,
        preset: str = "veryfast",
        threads: int = 0,
        aspect: Fraction = Fraction(1),
        tags: dict[str, str] | None = None,
        language: str | None = None,
        colour_tags: tuple[int, int] | None = None,
    ) -> None:
        import av

        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        if self.width < 2 or self.height < 2:
            raise SinkError(f"frame size must be at least 2x2. Got {self.width}x{self.height}")
        self.rate = as_rate(fps)
        if self.rate <= 0:
            raise SinkError(f"fps must be positive. Got {fps}")
        self._overwrite = overwrite
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
        self.duration = 0.0
        self.size_note: str | None = None
        if self.width % 2 or self.height % 2:
            self.size_note = (f"{self.width}x{self.height} written as {self.width + self.width % 2}x"
                              f"{self.height + self.height % 2}: H.264 in yuv420p has no odd sizes (the edge is repeated)")
        self._in_tb = Fraction(time_base) if time_base else None
        self.time_base = output_time_base(self.rate, self._in_tb) if self._in_tb else output_time_base(self.rate)
        self._grid = RateGrid(self.rate, self._in_tb or Fraction(0))
        self._closed = False
        self._last_pts = -1
        self._held: dict[int, int] = {}  # frames' own durations (ticks), by timestamp, until encoded
        self._end: int | None = None  # where the last frame written ends (ticks), if it has its own duration
        self._first_ticks = self._first_dts = None
        self._behind = None  # the latest packet, muxed when the next comes (the last one's duration is set)
        self._first_pts: float | None = None
        self._audio: AudioTrack | None = None
        self.tmp_path = parent / f".{self.path.stem}.part{os.getpid()}{self.path.suffix or '.mp4'}"
        try:
            # Create the file now: FFmpeg opens it only when the first packet is muxed, and an
            # unwritable folder must fail here, not after the first frames were computed.
            self.tmp_path.touch()
            # The movie clock (edit lists: where a stream starts) is the track clock, not 1/1000 s.
            tags, mdta = _mp4_tags(tags or {})
            custom = "+use_metadata_tags" if mdta else ""
            self._out = av.open(str(self.tmp_path), "w", format="mp4",
                                options={"movflags": f"+faststart+write_colr{custom}",
                                         "movie_timescale": str(self.time_base.denominator)})
        except (OSError, av.FFmpegError) as exc:
            self.tmp_path.unlink(missing_ok=True)
            raise SinkError(f"cannot write in {parent}: {getattr(exc, 'strerror', None) or exc}") from exc
        try:
            self._out.metadata.update(tags or {})
            self._video = self._out.add_stream("libx264", rate=self.rate)
            self._video.width = self.width + self.width % 2
            self._video.height = self.height + self.height % 2
            self._video.pix_fmt = "yuv420p"
            self._video.time_base = self.time_base
            if language:
                self._video.metadata["language"] = language
            self._video.codec_context.time_base = self.time_base
            self._video.options = {"crf": str(int(crf)), "preset": preset,
                                   **({"threads": str(int(threads))} if threads else {})}
            # What write() hands over (.yuv): BT.601 with limited range, tagged so that players
            # show an HD output (untagged, they would take BT.709) in the colours that went in.
            self._video.codec_context.colorspace = BT601
            self._video.codec_context.color_range = LIMITED
            self._colour_tags = colour_tags
            if colour_tags:  # an HD input's BT.709 primaries and transfer, stated as they were
                self._video.codec_context.color_primaries, self._video.codec_context.color_trc = colour_tags
            if aspect != 1:
                self._video.codec_context.sample_aspect_ratio = Fraction(aspect).limit_denominator(65535)
            if audio_from is not None:
                self._audio = AudioTrack(self._out, str(audio_from), start=audio_start, joins=joins)
        except BaseException:
            self._discard()
            raise

    @property
    def audio_note(self) -> str | None:
        """Set when the input's audio could not be copied unchanged (re-encoded or dropped), for the user."""
        return self._audio.note if self._audio is not None else None

    @property
    def audio_damaged(self) -> int:
        """Input audio packets left out because they were damaged (the rest was copied)."""
        return self._audio.damaged if self._audio is not None else 0

    @property
    def audio_packets(self) -> int:
        """Audio packets written so far."""
        return self._audio.packets if self._audio is not None else 0

    # -- video -----------------------------------------------------------------------------------
    def write(self, image: np.ndarray, pts: float | None = None, duration: float | None = None) -> None:
        """Append one frame.

        Args:
            image: ``(height, width, 3)`` uint8 BGR.
            pts: the frame's timestamp in seconds (the input's, to keep variable frame rate and
                audio sync); ``None`` = the next frame at the nominal rate.
            duration: seconds the frame is shown, where the input says: the last frame's sets
                where the video ends (a GIF's last picture held for seconds stays so); ``None``:
                until the next frame, and the last one for a frame interval.
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
            exact = Fraction(self._first_pts or 0.0) + self.frames_written / self.rate
        elif self._in_tb is not None:
            exact = self._grid.snap(round(Fraction(pts) / self._in_tb) * self._in_tb)
        else:
            exact = Fraction(pts)
        seconds = float(exact)
        if self._first_pts is None:
            self._first_pts = seconds
        ticks = round(exact / self.time_base)
        if ticks <= self._last_pts:  # timestamps must increase strictly
            ticks = self._last_pts + 1
        self._last_pts = ticks
        frame = av.VideoFrame.from_ndarray(bgr_to_i420(image), format="yuv420p")  # see .yuv
        frame.colorspace, frame.color_range = BT601, LIMITED
        if self._colour_tags:
            frame.color_primaries, frame.color_trc = self._colour_tags
        frame.pts = ticks
        frame.time_base = self.time_base
        if self._first_ticks is None:
            self._first_ticks = ticks
        self._end = None
        if duration is not None and duration > 0:
            ticks_in = round(Fraction(duration) / self._in_tb) if self._in_tb is not None else 0
            if ticks_in > 0:  # (under half an input tick: kept as it is)
                duration = self._grid.span(ticks_in * self._in_tb)
            self._held[ticks] = max(1, round(duration / self.time_base))
            self._end = ticks + self._held[ticks]
        try:
            self._mux_video(self._video.encode(frame))
            if self._audio is not None:
                self._audio.mux_until(seconds)
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from exc
        self.frames_written += 1
        self.duration = seconds - self._first_pts + (duration if duration and duration > 0 else float(1 / self.rate))

    def _mux_video(self, packets, last: bool = False) -> None:
        """Mux encoded packets, one behind: the last of all (``last``: the encoder is flushed)
        then ends the samples' clock where the last frame ends, not a frame interval after its
        timestamp (what a reader such as FFmpeg plays by)."""
        for packet in packets:
            if self._first_dts is None:
                self._first_dts = packet.dts
            # the muxer ends the presentation at the latest pts + duration: a frame's own duration,
            # where the input gave one, else (0) the muxer's guess of a frame interval
            if self._held and packet.pts is not None:
                packet.duration = self._held.pop(packet.pts, 0)
            behind, self._behind = self._behind, packet  # (a Ctrl-C inside mux never muxes it twice)
            if behind is not None:
                self._out.mux(behind)
        if last and self._behind is not None:
            packet, self._behind = self._behind, None
            if self._end is not None and None not in (packet.dts, packet.pts, self._first_dts):
                # the samples span what the frames span: end - first pts, on the decoding clock
                span = self._end - self._first_ticks - (packet.dts - self._first_dts)
                packet.duration = max(1, min(span, self._end - packet.pts))
                if packet.pts >= self._last_pts:  # the last frame shown, last in decoding order too: it
                    # lasts to the end (a frame dropped from an AVI made the span 0: 1 tick, 11 us)
                    packet.duration = max(packet.duration, self._end - packet.pts)
            self._out.mux(packet)

    def cue_audio(self, source: float, at: float) -> None:
        """The video jumps (a seek while recording): the audio goes on from ``source`` seconds of
        ``audio_from``, placed at ``at`` seconds of the output (the next frame's time); at most one
        audio frame is left out at the cut (:meth:`.audio.AudioTrack.cue`). No-op without audio."""
        import av

        if self._closed:
            raise SinkError(f"{self.path} is already closed")
        if self._audio is None:
            return
        try:
            self._audio.cue(source, at)
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"cannot write {self.path}: {getattr(exc, 'strerror', None) or exc}") from exc

    def close(self, *, audio_to_end: bool = True) -> Path:
        """Finish the file and rename it into place. Idempotent.

        Args:
            audio_to_end: copy the rest of the input's audio; ``False`` (a partial output) copies
                audio only up to the end of the last frame written.

        Returns:
            the final path (without ``overwrite``, another where a file took the name meanwhile).

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
            self._mux_video(self._video.encode(None), last=True)
            if self._audio is not None:
                self._audio.mux_until(None if audio_to_end else (self._first_pts or 0.0) + self.duration)
                self._audio.finish()
            self._out.close()
            self._close_audio()
            if self._overwrite:
                os.replace(self.tmp_path, self.path)
            else:
                self.path = rename_to_free_name(self.tmp_path, self.path)
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
        if self._audio is not None:
            self._audio.close()

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
