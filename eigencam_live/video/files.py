"""Video files decoded by PyAV: exact timestamps, and the rate as a :class:`~fractions.Fraction`
(29.97 stays 30000/1001). Network streams are decoded the same way (:mod:`.streams`)."""

from __future__ import annotations

import os
import time
from fractions import Fraction

import numpy as np

from eigencam_live.errors import SourceError

from .frames import Frame, FrameSource, SourceInfo, language_of
from .images import PHOTO_BRANDS
from .timing import Gaps, Joins, nominal_rate
from .transport import TransportRepair, probed_further, transport, transport_origin
from .yuv import colour_note, colour_tags, to_bgr

__all__ = ["VIDEO_EXTENSIONS", "FileSource"]

#: File endings taken as videos where a folder of inputs is expanded (``annotate``).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                    ".wmv", ".flv", ".3gp", ".gif")
#: Where a seek starts decoding, in seconds before its target, while it lands after it (``None``:
#: the stream's start): an MPEG-TS seek lands on the first keyframe after the time asked for.
_SEEK_BACK = (0, 2, 10, 30, 90, None)
#: Times demuxing goes on after FFmpeg's MPEG-TS resync gave up (EAGAIN) in one file.
_RESYNCS = 1000
#: The rate given to a stream that states none (one picture in a container, say): a still shown
#: for one frame of the commonest video rate.
DEFAULT_RATE = Fraction(30)


class FileSource(TransportRepair, FrameSource):
    """A video file or a network stream, decoded by PyAV.

    ``pts`` is the container timestamp in seconds (``frame.time``), so variable frame rates are kept.
    A file that is cut off in the middle ends at the last frame that decodes and sets
    :attr:`warning`; a damaged packet is left out and decoding goes on after it (said by :attr:`damage`).
    """

    kind = "file"

    def __init__(self, path: str, *, options: dict[str, str] | None = None) -> None:
        self.path = str(path)
        self._options = options or {}
        self._count = 0
        self._last_pts: float | None = None
        self._last_held: float | None = None  # the last frame's own duration (seconds), if given
        self._damaged = False
        self._last_raw: int | None = None  # the last frame's pts, in the stream's time base
        self._tail: list | None = None  # frames found again after a cut-off end (see _frames_after_end)
        self._counted = 0
        self._refused: set[tuple] = set()  # video packets the decoder refused, left out (see _decoded)
        self._strays: set[int] = set()  # pictures given out of order after damage, left out (see _in_order)
        self._ahead: list = []  # decoded frames held back to be given out next (see _in_order)
        self._unreadable_since: int | None = None  # the frame count at a skipped unreadable stretch
        self._unreadable: list[tuple[float, int]] = []  # (seconds, frames) lost in such stretches, each once
        self._skip_reason = ""
        self._joined = False  # a transport found joined before a seek (its Joins starts again there)
        self._interrupted = False
        self._open()

    def _describe(self) -> str:
        return self.path

    def _open(self) -> None:
        import av

        try:
            self._container = av.open(self.path, options=self._options, timeout=self._timeouts())
            video = self._container.streams.video
            if video and not video[0].codec_context.width and transport(self._container) and os.path.isfile(self.path):
                # A transport whose first picture FFmpeg's first look did not reach: its rate was
                # guessed (25.007 for 25 fps); looking further finds it.
                self._container.close()
                self._container = av.open(self.path, options=probed_further(self._options), timeout=self._timeouts())
        except av.FFmpegError as exc:
            hint = ""
            if os.path.isfile(self.path) and mp4_without_index(self.path):  # (a trial: "Invalid data found")
                hint = "; its index (the moov box) is missing: the file was cut off before its end, or is still being written"
            raise SourceError(f"cannot open {self._describe()} as a video: {self._reason(exc)}{hint}") from exc
        except OSError as exc:
            raise SourceError(f"cannot open {self._describe()}: {exc.strerror or exc}") from exc
        # a song's or a podcast's cover art is a video track of one picture "attached" to the sound:
        # not the video (a trial: a song was one frame, its sound cut to 50 ms, said cut off)
        moving = [s for s in self._container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not moving:
            covers = bool(self._container.streams.video)
            self.close()
            raise SourceError(f"{self._describe()} has no video stream" + (
                " (only cover art: a picture attached to its sound; to annotate it, save it as an image first)"
                if covers else ""))
        self._stream = stream = moving[0]
        stream.thread_type = "AUTO"
        self._frames = self._decoded()
        # The first frame is decoded now: a file that holds no pictures fails here, and its display
        # matrix (a phone held upright) decides the size the consumer gets.
        self._peeked = self._decode_next(first=True)
        rotation = self._peeked.rotation  # degrees counter-clockwise; flips are not applied
        self._turns = (rotation // 90) % 4 if rotation % 90 == 0 else 0
        width, height = self._peeked.width, self._peeked.height
        if not width or not height:
            self.close()
            raise SourceError(f"{self._describe()} has a video stream without a frame size")
        self._coded = (width, height)
        if self._turns % 2:
            width, height = height, width
        rate = nominal_rate(stream.average_rate, stream.base_rate, stream.guessed_rate) or DEFAULT_RATE
        frames = stream.frames or None
        if stream.duration and stream.time_base:
            spanned = int(round(float(stream.duration * stream.time_base * rate))) or None
            # An MP4 edit list (a cut copied without re-encoding) shows fewer frames than the file
            # stores: its duration, not its sample count, says how many play.
            if frames is None or (spanned is not None and spanned < frames - max(2, frames // 100)):
                frames = spanned
        self._end, self._own_end = _expected_end(self._container, stream)
        whole = self._container.duration
        self._file_end = (whole + (self._container.start_time or 0)) / 1_000_000 if whole else None
        self._start = float((stream.start_time or 0) * stream.time_base)  # seconds: where seeks count from
        if transport(self._container):
            frames = self._transport_count(frames, rate)
        #: seconds on the file's clock where it starts, for an output's 0: where that clock is a
        #: transport's (MPEG-TS, MPEG-PS: any value; players start there), the first of its video
        #: and first audio track; elsewhere 0, a late start being the file's own (an MP4 edit list)
        self.origin = transport_origin(self._container, self._start)
        #: a transport's clock made continuous across joins (None elsewhere: a file's own clock)
        self.joins = Joins() if transport(self._container) else None
        self._clock = self.joins.track(decides=True) if self.joins is not None else None
        #: frames a transport's demuxer dropped without a word (a damaged stretch): its clock's gaps
        self.gaps = Gaps() if self.joins is not None else None
        #: the file's own metadata worth keeping in an output (when and where it was filmed, its
        #: title...), not what the muxer that wrote it recorded about itself
        self.tags = {k: v for k, v in self._container.metadata.items() if k.lower() not in _MUXER_TAGS}
        #: the video track's language tag (``eng``...), ``None`` where it is unset or ``und``
        self.language = language_of(stream)
        streams = self._container.streams
        left = [f"{n - 1} audio track{'s' if n > 2 else ''} beyond the first" for n in [len(streams.audio)] if n > 1]
        left += [f"{n} subtitle track{'s' if n > 1 else ''}" for n in [len(streams.subtitles)] if n]
        left += [f"{n - 1} video track{'s' if n > 2 else ''} beyond the first" for n in [len(moving)] if n > 1]
        left += ["its cover art" for _ in range(len(streams.video) > len(moving))]
        left += [f"{n} data track{'s' if n > 1 else ''} (a timecode...)" for n in [len(streams.data)] if n]
        #: what an output of this file leaves out (its first video and audio tracks are kept)
        self.left_out = ", ".join(left) or None
        #: set for colours an SDR BT.601 output cannot show as they are (HDR, BT.2020's gamut)
        self.colour_note = colour_note(self._peeked)
        #: ``(color_primaries, color_trc)`` an output keeps (:func:`~.yuv.colour_tags`), else ``None``
        self.colour_tags = colour_tags(self._peeked)
        aspect = _pixel_aspect(stream)
        self.info = SourceInfo(
            self.kind, os.path.basename(self._describe().rstrip("/")) or self._describe(), width, height, Fraction(rate), frames,
            self.kind == "stream", self.kind == "file", self.path if self.kind == "file" else None,
            bool(self._container.streams.audio), stream.time_base, (self._turns * 90) % 360,
            1 / aspect if self._turns % 2 else aspect,
        )

    def _decoded(self):
        """The video stream's frames in order, decoded as FFmpeg's own tools do a damaged file: a
        packet the decoder refuses is left out (counted, its reason kept) and the next is decoded
        (the decoder conceals what referred to it). Before, the first such packet ended the file:
        64 bytes damaged mid-file lost the 40 frames after them."""
        import av

        resyncs = 0
        while True:
            try:
                for packet in self._container.demux(self._stream):
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as exc:
                        self._refused.add((packet.pts, packet.pos))  # (a loop or a seek meets it again)
                        self._skip_reason = _av_reason(exc)
                        continue
                    yield from frames
                return
            except av.error.BlockingIOError:
                # MPEG-TS: over 64 KiB without a sync byte (a zeroed stretch), FFmpeg's resync gives
                # up with EAGAIN, and demuxing again goes on after it (a review: 150 KB damaged
                # ended the file there). A live stream's EAGAIN is its own (streams.py).
                resyncs += 1
                if self.kind != "file" or resyncs > _RESYNCS:
                    raise
                self._unreadable_since = self._count  # the clock's next jump ahead is that stretch's

    def _decode_next(self, *, first: bool = False):
        """The next decoded :class:`av.VideoFrame`, or ``None`` at the end (or at damage, noted in
        :attr:`warning`); the ``first`` frame must exist (else :class:`SourceError`)."""
        import av

        try:
            return next(self._frames)
        except StopIteration:
            if first:
                self.close()
                if self._refused:  # every packet refused: why
                    raise SourceError(f"cannot decode {self._describe()}: {self._skip_reason}") from None
                raise SourceError(f"{self._describe()} holds no decodable video frames") from None
            return None
        except av.FFmpegError as exc:
            if first or self._count == 0:
                self.close()
                raise SourceError(f"cannot decode {self._describe()}: {self._reason(exc)}") from exc
            self.warning = (f"{self._describe()} is damaged or cut off: decoding stopped after {self._count} frames "
                            f"({self._reason(exc)})")
            self._damaged = True
            return None

    def _timeouts(self) -> tuple[float, float]:
        """PyAV's ``(open, read)`` timeouts, seconds."""
        return (10.0, 10.0)

    def _reason(self, exc: Exception) -> str:
        """Why PyAV failed, in a few words."""
        return _av_reason(exc)

    def read(self) -> Frame | None:
        if self._container is None:
            return None  # closed
        frame = self._next_decoded()
        if frame is not None:
            frame = self._in_order(frame)
        if frame is None and self._tail is None and self.kind == "file" and not self._damaged:
            self._check_complete()
            if self.warning or self._short():  # cut off, or damaged at its end: what the decoder's threads dropped
                self._tail = self._frames_after_end()
                frame = self._tail.pop(0) if self._tail else None
        elif frame is None and self._tail:
            frame = self._tail.pop(0)
        if frame is None:
            if self.gaps is not None:
                self.gaps.restart()  # a gap before the last frame counts
            if self._tail is not None and self.warning and self._count != self._counted:
                self._counted, self.warning = self._count, None
                self._check_complete()  # the count with the frames found again (or no shortfall left)
            return None
        before_raw, self._last_raw = self._last_raw, frame.pts
        self._lost_unreadable(before_raw, frame)
        now = time.monotonic()
        if (frame.width, frame.height) != self._coded:
            # A stream that changes resolution mid-way: every frame keeps the size the consumer
            # (and the output file) was set up for.
            image = to_bgr(frame, self._coded)
        else:
            image = to_bgr(frame)
        if self._turns:
            image = np.ascontiguousarray(np.rot90(image, self._turns))  # as the display matrix shows it
        # its own duration, where the file gives one (a GIF's or an MP4's last frame may be held
        # longer than a frame interval)
        before, self._last_held = self._last_held, (frame.duration * float(frame.time_base)
                                                    if frame.duration and frame.time_base is not None else None)
        if frame.pts is not None and frame.time_base is not None:
            pts = float(frame.pts * frame.time_base)
            if self._last_held and self._clock is None:
                # A decoded frame's duration is its packet's: with B-frames, a gap in decoding order
                # (2.4 s for a frame 1.6 s before the end of a screen recording, whose output then
                # ran 0.8 s past its picture and its sound: a trial). Never past the track's end
                # (past the file's, for a frame after it: a writer's track duration may fall short).
                ends = (self._end if self._own_end else None, self._file_end)  # (the file's in whole us)
                room = next((end - pts for end in ends if end is not None and end > pts), None)
                if room is not None and room < self._last_held - 1e-6:
                    self._last_held = room
            if self._clock is not None:
                pts = self._clock.place(pts, self._last_held or 1 / float(self.info.rate))
        elif self._last_pts is not None:
            # a picture the decoder gave no time (concealed from a damaged packet): when the next
            # was due. (It was given its count over the rate: 2.6 s into a clock at 12.6 s.)
            pts = self._last_pts + (before or 1 / float(self.info.rate))
        else:
            pts = self._count / float(self.info.rate)
        if self.gaps is not None and self._clock is not None:  # (after a seek into a joined file: raw times)
            self.gaps.see(pts - self.origin)  # on the output's clock, as players show it
            # A transport's frame number follows its clock, as a seek's (index / rate) does: one
            # number for a frame however it was reached, and the frames lost in a gap counted (a
            # trial: after a gap the counter and the time disagreed, and ← jumped back across it)
            self._count = max(self._count, round((pts - self._start) * float(self.info.rate)))
        self._last_pts = pts
        out = Frame(image, self._count, pts, now, self._last_held)
        self._count += 1
        return out

    def _next_decoded(self):
        """The next decoded frame: one peeked or held back first (see :meth:`_in_order`)."""
        if self._peeked is not None:
            frame, self._peeked = self._peeked, None
            return frame
        if self._ahead:
            return self._ahead.pop(0)
        return self._decode_next()

    def _short(self) -> bool:
        """Whether fewer frames came than the container counts, by any number (a count that is
        not exact, or a damaged last packet, whose error the decoder's threads swallow)."""
        if self._joined or (self.joins is not None and self.joins.joined):
            return False  # its count spans its parts' clocks (and its raw clock is ambiguous)
        expected = self.info.frame_count
        return bool(expected) and self._accounted() < expected

    def _accounted(self) -> int:
        """The frames decoded, with those left out as damaged and a transport's gaps (none of them
        missing from its end). A transport's count follows its clock: its gaps are in it already."""
        counted = self.gaps is not None and self._clock is not None
        return self._count + len(self._refused) + (self.gaps.missing if self.gaps is not None and not counted else 0)

    def _frames_after_end(self) -> list:
        """The frames after the last one decoded, decoded again on one thread from the keyframe
        before it, each packet on its own: at a cut-off or damaged end, frame threading drops the
        frames it held (a cut-off MP4 gave 12 of the 14 that decode) and the errors of the packets
        it could not decode (a damaged last packet was left out without a word); these are
        counted in :attr:`damage`."""
        import av

        self._counted = self._count
        if self._last_raw is None:
            return []
        found = []
        try:
            with av.open(self.path, options=self._options) as container:
                stream = container.streams[self._stream.index]
                # First the packets alone (no decoding): none after the last frame, nothing to find
                # (a count that only looked short: no second decode of the last GOP).
                container.seek(self._last_raw, stream=stream, backward=True)
                if not any(p.pts is not None and p.pts > self._last_raw for p in container.demux(stream)):
                    return []
                stream.thread_type = "NONE"
                container.seek(self._last_raw, stream=stream, backward=True)
                for packet in container.demux(stream):
                    try:
                        found += [f for f in packet.decode() if f.pts is not None and f.pts > self._last_raw]
                    except av.FFmpegError as exc:  # this packet is damaged: the next may decode
                        if packet.pts is not None and packet.pts > self._last_raw:
                            self._refused.add((packet.pts, packet.pos))  # (once, as in _decoded)
                            self._skip_reason = _av_reason(exc)
                        continue
                    if len(found) >= _TAIL_FRAMES:  # (as many as frame threads can hold)
                        break
        except (OSError, av.FFmpegError):
            pass
        return sorted(found, key=lambda f: f.pts)

    @property
    def damage(self) -> str | None:
        """The damaged video packets left out so far (:attr:`warning` says where a file ended early:
        the sound of a file whose video ran to its end is kept to its end)."""
        n = len(self._refused)
        gaps = self._transport_damage()
        if n:
            said = (f"{self._describe()} is damaged: {n} video packet{'s' if n > 1 else ''} could not be decoded and "
                    f"{'were' if n > 1 else 'was'} left out ({self._skip_reason})")
            return f"{said}; {gaps}" if gaps else said
        return f"{self._describe()}: {gaps}" if gaps else None

    def _check_complete(self) -> None:
        if self._joined or (self.joins is not None and self.joins.joined):
            return  # its count and duration span the first part's clock to the last one's, not its length
        expected = self.info.frame_count
        # Containers round their frame counts; only a clear shortfall means a cut-off file (the
        # packets left out as damaged, and a transport's gaps, are not missing from its end).
        if self.kind == "file" and expected and self._accounted() < expected - max(2, expected // 100):
            self.warning = (f"{self._describe()} ends early (cut off?): decoded {self._count} of "
                            f"{expected} frames")
        elif self.kind == "file" and self._end is not None and self._last_pts is not None:
            # Matroska stores no frame count, but its header gives the duration: the video track's
            # own (a few frames' rounding at most), or the whole file's (its audio may run longer).
            held = self._last_held or 1 / float(self.info.rate)
            shortfall = self._end - (self._last_pts + held)
            allowed = max(3 / float(self.info.rate), 0.02 * self._end) if self._own_end else max(1.0, 0.05 * self._end)
            if shortfall > allowed:
                self.warning = (f"{self._describe()} ends early (cut off?): video stops at {self._last_pts:.2f} s "
                                f"of {self._end:.2f} s")

    def seek(self, index: int) -> None:
        if not self.info.seekable:
            super().seek(index)
        index = max(0, int(index))
        stream = self._stream
        target = index / self.info.rate  # seconds, relative to the first frame
        start = round(self._start / stream.time_base)  # (a transport's first picture that decodes)
        offset = start + int(target / stream.time_base)
        self._peeked = None
        self._tail = None  # the end is found again (and what threads dropped there) when it comes
        self._last_raw = offset - 1  # (frames found again after a cut-off end start at the target)
        # a joined file's raw clock is ambiguous (each part's may start alike): from its start (a
        # loop) the clock is made continuous again; after any other seek (to the first part that
        # holds the time) frames keep the timestamps found there
        self._ahead = []
        self._unreadable_since = None  # (a review: armed across a loop, a later join read as 2365 frames lost)
        if self.joins is not None:
            joined, self.joins = self.joins.joined, Joins()
            self._joined = self._joined or joined  # (known for good: a seek past the first part's count
            # found nothing there and said the file was cut off, "decoded 0 of 12 frames": a review)
            # (a file not known to be joined keeps a clock: its gaps are found after a seek too)
            self._clock = self.joins.track(decides=True) if index == 0 or not self._joined else None
            self.gaps.restart()
        # a transport's frame number comes from the frame's time (read()): the frame a seek into a
        # gap lands on is the one before it
        self._count = 0 if self.gaps is not None and self._clock is not None else index
        # Decode forward from the keyframe before the frame we want; keep it for the next read. A
        # transport's seek (by its bytes, then its clock) can land after the target: then from
        # further back, at last from the start (a trial: "69 / 150" showed the frame at 3.08 s).
        tried = set()
        for back in _SEEK_BACK:
            # (before the start: FFmpeg lands on the first frame; at the start an MPEG-TS seek
            # landed on the second keyframe)
            at = start - int(1 / stream.time_base) if back is None else max(start, offset - int(back / stream.time_base))
            if at in tried:
                continue
            tried.add(at)
            self._container.seek(at, stream=stream, backward=True, any_frame=False)
            self._frames = self._decoded()
            first, late = self._decode_to(target, start)
            if not late:
                break
        if not first:  # past where a cut-off file decodes: its end
            self._frames = (f for f in ())
            return
        if first[0].pts is not None:  # (the frame before the target, in a transport: not a step back)
            self._last_raw = min(self._last_raw, first[0].pts - 1)
        rest = self._frames

        def chain():
            yield from first
            yield from rest

        self._frames = chain()

    def _decode_to(self, target: Fraction, start: int):
        """Decode from where a seek landed to the frame at ``target`` seconds from ``start``: the
        first at or after it, within half a frame; in a transport, the last before half a frame
        after it (in a gap: the frame before the gap, so that ← crosses it, and telecined film's
        frames 1 and 1.5 frames apart are each reached). Returns the frames to give out first
        (none at the end) and whether the seek landed after the target."""
        import av

        half = Fraction(1, 2) / self.info.rate
        before = self.gaps is not None and self._clock is not None
        prev, prev_t = None, None
        while True:
            try:
                frame = next(self._frames)
            except (StopIteration, av.FFmpegError):
                # nothing after where it landed: earlier, unless it was the end; past the last frame, the end
                if prev is not None and prev_t + half >= target:
                    return [prev], False
                return [], prev is None
            if self._interrupted:  # (stop, from another thread: a seek decoding a long file from its start)
                return [], False
            t = (frame.pts - start) * self._stream.time_base if frame.pts is not None else target
            if not before and t + half >= target:
                return [frame], prev is None and t > target + half
            if before and t >= target + half:
                return ([prev, frame] if prev is not None else [frame]), prev is None
            prev, prev_t = frame, t

    def interrupt(self) -> None:
        """Cut short a seek decoding its way to a frame (see :meth:`seek`) from another thread."""
        self._interrupted = True

    def close(self) -> None:
        # The decoder's threads live as long as the stream's codec context, which the stream, the
        # decoding generator and a peeked frame keep alive past the container's close: let go of
        # all of them here, not at some later garbage collection.
        frames, self._frames = getattr(self, "_frames", None), None
        self._peeked = None
        self._stream = None
        container, self._container = getattr(self, "_container", None), None
        if frames is not None:
            frames.close()
        if container is not None:
            container.close()


#: At most this many frames are found again after a cut-off end (see FileSource._frames_after_end).
_TAIL_FRAMES = 16

#: Container tags that describe the file's writer, not its content: never copied to an output.
_MUXER_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}


def _pixel_aspect(stream) -> Fraction:
    """The stream's sample aspect ratio (the shape of a coded pixel), 1 where it states none."""
    try:
        sar = stream.sample_aspect_ratio
    except Exception:  # noqa: BLE001 - PyAV builds without it
        return Fraction(1)
    if not sar or sar.numerator <= 0 or sar.denominator <= 0:
        return Fraction(1)
    return Fraction(sar.numerator, sar.denominator)


def _expected_end(container, stream) -> tuple[float | None, bool]:
    """Where the video should end, in seconds, by the container's header (``None``: not said),
    and whether that is the video track's own end (not the whole file's)."""
    if stream.duration and stream.time_base:
        return float((stream.duration + (stream.start_time or 0)) * stream.time_base), True
    tag = stream.metadata.get("DURATION")  # Matroska, per track, as HH:MM:SS.nnnnnnnnn
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec), True
        except ValueError:
            pass
    if container.duration:
        return (container.duration + (container.start_time or 0)) / 1_000_000, False
    return None, False


def mp4_without_index(path: str) -> bool:
    """Whether ``path`` is an MP4 (or MOV) whose top-level boxes hold no ``moov``: a recording cut
    off before its index, which most writers put at the end, or one still being written (not a
    HEIF or AVIF photo, which holds none)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            at, kinds = 0, []
            brand = b""
            while at + 8 <= size and len(kinds) < 64:
                f.seek(at)
                head = f.read(16)
                brand = brand or head[8:12]
                length, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if length == 1 and len(head) == 16:  # a 64-bit length follows
                    length = int.from_bytes(head[8:16], "big")
                kinds.append(kind)
                if length < 8:  # 0: to the end of the file (or a broken length)
                    break
                at += length
    except OSError:
        return False
    return bool(kinds) and kinds[0] == b"ftyp" and b"moov" not in kinds and brand not in PHOTO_BRANDS


def _av_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if "Errno" in text else text.strip()
