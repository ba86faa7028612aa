"""The input's audio in an MP4 output: copied packet by packet (no re-encoding), interleaved with
the video as it is written; codecs MP4 cannot hold (PCM, Vorbis...) are re-encoded to AAC,
starting where the input's audio starts (its offset from the video is kept).

A stretch of the input (the app's recordings) is the same path with a shift of the clock:
``start`` (and :meth:`AudioTrack.cue` after a jump) says which input time lands where in the output.
Audio is cut at packet boundaries (copying cannot cut inside a packet), so a stretch covers the time
asked for within one audio frame, and every packet keeps its exact place against the video."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any

from . import transport as _transport
from .frames import language_of
from .timing import Joins

#: Times demuxing goes on after FFmpeg's MPEG-TS resync gave up (EAGAIN) in one file, as the video's.
_RESYNCS = 1000
#: An MPEG-TS/PS clock: 33 bits of 1/90000 s, which wrap (every 26.5 hours).
_WRAP = 1 << 33
#: Ticks (1 s) before a clock's 0 where the sound that starts a clock has wrapped (see _Unwrap).
_PRIMING = 90_000

__all__ = ["MP4_AUDIO_CODECS", "AudioTrack"]

#: Audio codecs copied into MP4 unchanged; others are re-encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac", "mp2"})


class AudioTrack:
    """The first audio stream of ``source``, muxed into the open output container ``out``.

    A source without audio, or one that cannot be read, gives an empty track (every method is then
    a no-op): the video source reports unreadable inputs.

    Attributes:
        note: set when the audio could not be copied unchanged (re-encoded or dropped), for the user.
        packets: audio packets muxed so far.
        damaged: input packets left out because the muxer or the decoder refused them (a damaged
            track: the rest is copied, with a gap of one packet for each).
    """

    def __init__(self, out: Any, source: str, *, start: float | None = None, joins: Joins | None = None) -> None:
        """``start``: the input time (seconds) that becomes the output's 0; audio before it is left
        out. ``None``: all of it, on the input's own clock. ``joins``: the video's
        (:attr:`~eigencam_live.video.files.FileSource.joins`), for a transport's clock that jumps:
        the audio after a join is shifted as the video was."""
        import av

        self.note: str | None = None
        self.packets = 0
        self.damaged = 0
        self._out = out
        self._input = None
        self._source = None  # the input's audio stream
        self._stream = None  # the output's audio stream
        self._decoder = None  # the input's audio decoder when re-encoding
        self._packets = None  # the input's packets still to copy; None once exhausted or closed
        self._pending = None  # the first packet past the time asked for so far
        self._shift = 0  # input ticks minus output ticks (the input stream's time base)
        self._floor: Fraction | None = None  # output seconds: no packet may start before (None: all)
        self._end: Fraction | None = None  # output seconds: the end of the audio taken so far
        self._next: int | None = None  # re-encoding: the output number of the next sample
        self._order: list[int] | None = None  # re-encoding: the channels put in FFmpeg's order
        self._last_dts: int | None = None  # copying: the previous packet's dts, and the gap to it
        self._gap = 0
        self._resyncs = 0  # demuxing started again after a stretch without sync bytes (MPEG-TS)
        self._clock = joins.track() if joins is not None else None
        self._unplaced = None  # a packet past a join the video has not reached yet, its clock's own
        self._track_end: int | None = None  # (see below)
        self._unwrap: _Unwrap | None = None  # a transport's: sound before a clock's 0 put back before it
        try:
            container = av.open(source)
            if container.streams.audio and not _known(container.streams.audio[0]):
                container.close()  # its first packets lie beyond FFmpeg's first look: read further
                container = av.open(source, options=_transport.probed_further())
        except (OSError, av.FFmpegError):
            return
        if not container.streams.audio:
            container.close()
            return
        stream = container.streams.audio[0]
        # The codec, not its decoder: MP3 is decoded by "mp3float", and must still be copied.
        name = stream.codec_context.codec.canonical_name
        if not _known(stream):  # MP4's header cannot be written without them ("Invalid argument")
            container.close()
            size = os.path.getsize(source) if os.path.isfile(source) else None
            where = ("in the whole input" if size is not None and size <= _transport.PROBE_BYTES
                     else f"within the first {_transport.PROBE_BYTES >> 20} MB of the input")
            self.note = f"audio ({name}) dropped: its sample rate and channels are not known {where} (no audio packet there)"
            return
        try:
            if name in MP4_AUDIO_CODECS:
                self._stream = out.add_stream_from_template(stream)  # (with codec tag 0: MP4 picks its own)
            else:
                # PCM (.mov, .avi), Vorbis (.webm)...: MP4 cannot hold them; AAC is what plays everywhere.
                rate = stream.codec_context.sample_rate or 48000
                layout, self._order = _decoded_layout(stream.codec_context)
                self._stream = out.add_stream("aac", rate=rate if rate in _AAC_RATES else 48000)
                self._stream.layout = layout
                self._decoder = stream.codec_context
                self.note = f"audio re-encoded from {name} to AAC (MP4 cannot hold {name})" + (
                    "" if rate in _AAC_RATES else f", from {rate / 1000:g} to 48 kHz (AAC has no {rate / 1000:g} kHz)")
        except (ValueError, av.FFmpegError) as exc:
            container.close()  # the video is still written
            self._stream = None
            self.note = f"audio ({name}) dropped: {exc}"
            return
        if language_of(stream):
            self._stream.metadata["language"] = language_of(stream)
        self._input = container
        self._source = stream
        #: where the input's track ends (its ticks), where its header says and its clock is its own:
        #: an edit list cuts its last packet there (the encoder's padding, 256 of AAC's 1024 samples)
        self._track_end = ((stream.start_time or 0) + stream.duration
                           if stream.duration and not _transport.transport(container) else None)
        if _transport.transport(container) and stream.time_base == Fraction(1, 90000):
            self._unwrap = _Unwrap()
        self._packets = self._demux()
        if start is not None:
            self._seek(start, 0.0)

    def cue(self, source: float, at: float) -> None:
        """Go on with the input's audio from ``source`` seconds, placed at ``at`` seconds of the
        output (a jump of the video: a seek during a recording).

        What was asked for before ``at`` is muxed first; the new stretch starts with the first packet
        that starts at or after both ``at`` and the end of the audio written so far (a track
        cannot overlap itself), so at most one audio frame is left out at the cut.
        """
        if self._input is None:
            return
        self.mux_until(at)
        self._seek(source, at)

    def _seek(self, source: float, at: float) -> None:
        import av

        tb = self._source.time_base
        self._shift = round((Fraction(source) - Fraction(at)) / tb)
        self._floor = Fraction(at) if self._end is None else max(Fraction(at), self._end)
        self._pending = self._unplaced = None
        self._last_dts = None
        self._next = None  # re-encoding: numbered again from the stretch's first sample
        try:
            self._input.seek(round(Fraction(source) / tb), stream=self._source, backward=True)
        except (OSError, av.FFmpegError) as exc:
            self.note = f"audio stops at {at:.3f} s: the input cannot seek to {source:.3f} s ({exc})"
            self._packets = None
            return
        if self._decoder is not None:
            self._decoder.flush_buffers()
        if self._unwrap is not None:
            self._unwrap = _Unwrap()  # (what it held was from before the seek)
        self._packets = self._demux()

    def mux_until(self, seconds: float | None) -> None:
        """Copy input audio packets that start up to ``seconds`` of the output (``None`` = all of them)."""
        import av

        if self._packets is None:
            return
        while True:
            packet = self._pending
            if packet is None:
                packet, self._unplaced = self._unplaced, None
                if packet is None:
                    try:
                        packet = next(self._packets)
                    except av.error.BlockingIOError:  # MPEG-TS: a stretch without sync bytes, as the video's
                        self._resyncs += 1  # (files.py): demuxing again goes on after it (a trial lost 22 s of sound)
                        self._packets = self._demux() if self._resyncs <= _RESYNCS else None
                        if self._packets is None:
                            return
                        continue
                    except Exception:  # the end (StopIteration, EOFError) or a damaged tail: keep what was copied
                        self._packets = None
                        return
                    if packet.dts is None or packet.size == 0:
                        continue
                    packet.pts = packet.dts if packet.pts is None else packet.pts
                    end = self._track_end
                    if end is not None and self._decoder is None and packet.duration and (
                            packet.pts < end < packet.pts + packet.duration):
                        packet.duration = end - packet.pts  # cut as the input's (a trial: 5.3 ms of padding played)
                if self._clock is not None:  # across a join, as the video
                    tb, joins = packet.time_base, self._clock.passed
                    raw = float(packet.pts * tb)
                    placed = self._clock.place(raw, float((packet.duration or 0) * tb), decide=seconds is None)
                    if placed is None:  # the video has not reached this join: the packet waits for it
                        self._unplaced = packet
                        return
                    step = round((placed - raw) / tb)
                    packet.pts += step
                    packet.dts += step
                    if self._clock.passed != joins and self._end is not None:
                        # the video's shift: what would overlap the sound written (a packet or so) is left out
                        self._floor = self._end if self._floor is None else max(self._floor, self._end)
                packet.pts -= self._shift  # now on the output's clock
                packet.dts -= self._shift
                if self._floor is not None and packet.pts * packet.time_base < self._floor:
                    # The track's first packet may reach back before the start (the muxer's edit
                    # list cuts it there); later ones may not overlap what was written.
                    end = (packet.pts + (packet.duration or 0)) * packet.time_base
                    if self._end is not None or end <= self._floor:
                        continue  # before the stretch asked for
            if seconds is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            self._pending = None
            try:
                self._take(packet)
            except av.FFmpegError as exc:  # e.g. a damaged ADTS header: that packet is left out
                if isinstance(exc, OSError):  # writing the output failed (a full disk): not the input's fault
                    raise
                self.damaged += 1

    def _demux(self):
        """The input's audio packets, a transport's unwrapped (:class:`_Unwrap`: what it holds
        survives a demuxing started again after a stretch without sync bytes)."""
        packets = self._input.demux(self._source)
        return self._unwrap(packets) if self._unwrap is not None else packets

    def _take(self, packet: Any) -> None:
        """Copy ``packet`` (on the output's clock) into the output, or decode and encode it."""
        if self._decoder is None:
            if not packet.duration and self._gap:
                # Matroska may store no packet durations; MP4 then gives the last one none and
                # players drop it.
                packet.duration = self._gap
            if self._last_dts is not None and packet.dts > self._last_dts:
                self._gap = packet.dts - self._last_dts
            self._last_dts = packet.dts
            self._end = (packet.pts + (packet.duration or self._gap)) * packet.time_base
            packet.stream = self._stream
            self._out.mux(packet)
            self.packets += 1
        else:
            for frame in self._decoder.decode(packet):
                if self._order is not None:
                    frame = _reordered(frame, self._order)
                if self._next is None:  # where the input's audio (or the stretch) starts
                    begin = Fraction(frame.time or 0.0)  # (the packet's pts: on the output's clock)
                    if self._end is not None:
                        begin = max(begin, self._end)
                    self._next = round(begin * frame.sample_rate)
                elif frame.time is not None:
                    # A hole in the input's audio (a dropout, a cut): silence fills it, else all
                    # that follows would play early against the picture. Smaller differences are
                    # timestamps' rounding: samples numbered consecutively (no click).
                    missing = round(Fraction(frame.time) * frame.sample_rate) - self._next
                    if missing * _GAP_HZ >= frame.sample_rate:
                        self._silence(frame, missing)
                frame.pts = self._next
                frame.time_base = Fraction(1, frame.sample_rate)
                self._next += frame.samples
                self._end = Fraction(self._next, frame.sample_rate)
                self._mux_encoded(self._stream.encode(frame))

    def _silence(self, like: Any, samples: int) -> None:
        """Encode ``samples`` of silence in ``like``'s format, from sample :attr:`_next` on."""
        import av
        import numpy as np

        packed = like.format.packed.name  # one plane (PyAV gives 8 planar channels a 9th plane)
        quiet = 128 if packed == "u8" else 0
        while samples > 0:
            n = min(samples, like.sample_rate)  # a second at a time
            chunk = av.AudioFrame(format=packed, layout=like.layout.name, samples=n)
            chunk.planes[0].update(np.full(chunk.planes[0].buffer_size, quiet, np.uint8).tobytes())
            chunk.sample_rate, chunk.pts, chunk.time_base = like.sample_rate, self._next, Fraction(1, like.sample_rate)
            self._mux_encoded(self._stream.encode(chunk))
            self._next += n
            samples -= n

    def finish(self) -> None:
        """Flush the AAC encoder (re-encoding only); call after the last :meth:`mux_until`."""
        if self._decoder is not None:
            self._mux_encoded(self._stream.encode(None))

    def close(self) -> None:
        """Release the input. Idempotent."""
        if self._input is not None:
            self._input.close()
            self._input = None
        self._packets = None

    def _mux_encoded(self, packets: list) -> None:
        for packet in packets:
            self._out.mux(packet)
            self.packets += 1


#: FFmpeg's default layout for each channel count, for inputs that give only the count (PCM in
#: Matroska): the AAC encoder needs to know which channel is which.
_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
#: FFmpeg's channel ids, whose ascending order is its native channel order.
_CHANNEL_IDS = {name: i for i, name in enumerate(
    "FL FR FC LFE BL BR FLC FRC BC SL SR TC TFL TFC TFR TBL TBC TBR".split())}
_CHANNEL_IDS.update(DL=29, DR=30, WL=31, WR=32, SDL=33, SDR=34, LFE2=35, TSL=36, TSR=37, BFC=38, BFL=39, BFR=40)
#: The sample rates AAC has (others are resampled to 48 kHz).
_AAC_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350})
#: numpy's type of each packed sample format.
_SAMPLE_TYPES = {"u8": "u1", "s16": "i2", "s32": "i4", "flt": "f4", "dbl": "f8", "s64": "i8"}
#: A hole in re-encoded audio longer than 1/_GAP_HZ s is filled with silence.
_GAP_HZ = 200


class _Unwrap:
    """A transport's audio packets with the sound that starts a clock just under its 33-bit wrap
    put before 0, where the clock goes on near 0 after it: AAC's priming before a clock that
    starts at 0 (the file's, or a joined part's) is -1920 ticks, which the clock gives as 95443.7 s.
    The output's sound started there (silent in any player); after a join the part's sound was
    lost. Only packets that start a run of the clock (the first, or after a jump) within
    :data:`_PRIMING` of the wrap are held for it: a clock that runs up to the wrap (a recording
    across it, a joined part started seconds before it: a review) is kept as it is, as are
    packets after which the clock goes on past the wrap (a part FFmpeg moved on by a wrap)."""

    def __init__(self) -> None:
        self.held: list = []
        self.last: int | None = None  # the dts of the last packet given out or held

    def __call__(self, packets):
        held = self.held
        for packet in packets:
            dts = packet.dts
            if dts is not None and packet.size:
                near = _WRAP - _PRIMING <= dts < _WRAP
                if held:
                    if 0 <= dts < _PRIMING:  # the clock went on near 0: the held ones came before it
                        for early in held:
                            early.dts -= _WRAP
                            early.pts = None if early.pts is None else early.pts - _WRAP
                    elif near and 0 <= dts - held[-1].dts <= _PRIMING:  # still the run that starts there
                        held.append(packet)
                        self.last = dts
                        continue
                    yield from held
                    held.clear()
                starts = self.last is None or not 0 <= dts - self.last <= _PRIMING
                self.last = dts
                if near and starts:
                    held.append(packet)
                    continue
            yield packet
        yield from held
        held.clear()


def _known(stream: Any) -> bool:
    """Whether FFmpeg learnt ``stream``'s format (sample rate, channels...) when the input was opened.
    (Its sample rate says it: its channels cannot be read here, a layout's copy with a custom order
    frees its map, see :func:`_decoded_layout`.)"""
    return bool(stream.codec_context.sample_rate)


def _decoded_layout(decoder: Any) -> tuple[str, list[int] | None]:
    """Give ``decoder`` (not yet opened) a layout in FFmpeg's native channel order, the same
    channels as its own: ``(that layout, the permutation that puts its samples in that order or None)``.

    Its own may be a custom order (8-channel PCM in a .mov: FL FR FC LFE SL SR BL BR). PyAV copies
    a layout's struct without its channel map and frees the map with each copy: every decoded frame
    of such a track would free it once more (heap corruption, the process aborted). So the layout
    is read once here and replaced before anything decodes."""
    layout = decoder.layout  # (this copy frees a custom order's map when it goes: replaced below)
    names = [c.name for c in layout.channels]
    del layout
    if all(n in _CHANNEL_IDS for n in names) and len(set(names)) == len(names):
        native = sorted(names, key=_CHANNEL_IDS.__getitem__)
        order = None if native == names else [names.index(n) for n in native]
        chosen = "+".join(native)
    else:  # unnamed channels (PCM in Matroska gives only their count): FFmpeg's default for the count
        order, chosen = None, _DEFAULT_LAYOUTS.get(len(names), f"{len(names)}c")
    decoder.layout = chosen
    return chosen, order


def _reordered(frame: Any, order: list[int]) -> Any:
    """``frame``'s samples with its channels put in ``order`` (see :func:`_decoded_layout`)."""
    import av
    import numpy as np

    packed = frame.format.packed.name
    if frame.format.is_planar:  # (not to_ndarray: PyAV gives 8-channel frames a 9th plane, and reads it)
        planes, dtype = frame.planes, np.dtype(_SAMPLE_TYPES[packed])
        samples = np.stack([np.frombuffer(planes[i], dtype, count=frame.samples) for i in order], axis=1)
    else:
        samples = frame.to_ndarray().reshape(-1, len(order))[:, order]
    # packed (one plane), which the encoder converts: PyAV's planar frames of 8 channels are as above
    out = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples).reshape(1, -1), format=packed, layout=frame.layout.name)
    out.sample_rate, out.pts, out.time_base = frame.sample_rate, frame.pts, frame.time_base
    return out
