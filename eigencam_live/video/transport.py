"""MPEG-TS and MPEG-PS files as they come: damaged stretches the demuxer drops without a word,
pictures a decoder gives out of order after damage, stretches without sync bytes, and the clock of
a transport, which starts anywhere and jumps. A part of :class:`~.files.FileSource` (its state is
the source's), kept apart from plain decoding."""

from __future__ import annotations

import os

from .timing import Joins

__all__ = ["TransportRepair", "probed_further", "transport", "transport_origin"]

#: Pictures out of order after damage looked past before a step back of the clock is a join.
_STRAYS = 4
#: How far FFmpeg reads to learn a stream's format when its first look (5 s) did not reach the
#: stream's first packet it can read: a transport with its sound long after its picture (a poor
#: muxer's interleaving), or its picture's first parameter set late (a capture cut inside a long
#: group of pictures). The packets read while probing are held in memory, hence a bound.
PROBE_SECONDS = 3600
PROBE_BYTES = 256 << 20


class TransportRepair:
    """What :class:`~.files.FileSource` does for a transport's damage (its attributes: ``joins``,
    ``gaps``, ``origin``, ``_last_raw``, ``_ahead``, ``_strays``, ``_unreadable``...)."""

    def _in_order(self, frame):
        """``frame``, or the frame after the pictures from before a damaged stretch of a transport
        that the decoder gave out after pictures from after it (2.88, 4.16, 4.20, 2.96, 4.24 s: its
        reordering lost its place): such pictures are left out (:attr:`damage`). Taken for a join of
        recordings, one shifted every later frame 1.28 s late, out of step with the sound (a
        trial). A join goes on from where the clock stepped back to; after strays the clock comes
        back to where it was within a few frames."""
        last, tb = self._last_raw, frame.time_base
        if (self.joins is None or last is None or frame.pts is None or tb is None
                or frame.pts >= last - Joins.BACK / float(tb)):
            return frame
        held = [frame]
        while len(held) <= _STRAYS:
            after = self._ahead.pop(0) if self._ahead else self._decode_next()  # (in the order decoded)
            if after is None:
                break  # the end with the clock still back: a join's short last part
            if after.pts is not None and after.pts <= last:
                held.append(after)  # the clock still back
                continue
            self._strays.update(f.pts for f in held)  # back where it was: strays (once, however often met)
            return after
        self._ahead = held[1:] + self._ahead  # back for good: a join, its frames in turn
        return held[0]

    def _transport_count(self, frames: int | None, rate) -> int | None:
        """``frames`` (a transport's count, from its duration), from the first picture that decodes,
        which is where seeks and frame numbers count from: a capture cut inside a group of pictures
        starts with pictures that cannot be decoded (frame numbers started at 25, and the count
        was 90 for 62). ``None`` where the count cannot be (recordings joined end to end: the
        duration spans their clocks, 2.4 million frames for 200): each picture of an MPEG-TS
        takes at least one of its 188-byte packets."""
        peeked = self._peeked
        if peeked.pts is not None and peeked.time_base is not None:
            first = float(peeked.pts * peeked.time_base)
            if frames and first > self._start:
                frames = max(1, frames - round((first - self._start) * float(rate)))
            self._start = max(self._start, first)
        if frames and self._container.format.name == "mpegts" and os.path.isfile(self.path):
            if frames > os.path.getsize(self.path) // 188:
                return None
        return frames

    def _lost_unreadable(self, before: int | None, frame) -> None:
        """Where a stretch without sync bytes was skipped (EAGAIN, :meth:`_decoded`) and the clock
        then jumps ahead by more than a join's step: the frames of that time are lost, not a join
        of recordings (a review: 17 s lost were said as nothing); said in :attr:`damage`."""
        since = self._unreadable_since
        if since is None or before is None or frame.pts is None or frame.time_base is None:
            return
        if not 0 <= self._count - since <= 4 * _STRAYS:  # (frames the decoder held from before it have come)
            self._unreadable_since = None
            return
        step = float((frame.pts - before) * frame.time_base)
        if step > Joins.AHEAD:
            self._unreadable_since = None
            at = float(before * frame.time_base) - self.origin
            lost = (round(at, 3), round(step * float(self.info.rate)) - 1)
            if lost not in self._unreadable:  # (a list: another thread reads it, a set would change size under it)
                self._unreadable.append(lost)

    def _transport_damage(self) -> str | None:
        """The gaps, the unreadable stretches and the pictures left out of order, in a few words
        (for :attr:`~.files.FileSource.damage`), else ``None``."""
        said = self.gaps.describe() if self.gaps is not None else None
        if unreadable := list(self._unreadable):  # (a copy: the capture thread may add to it)
            (at, _), more = min(unreadable), len(unreadable) - 1
            lost = sum(k for _, k in unreadable)
            lost_said = (f"{lost} frame{'s are' if lost > 1 else ' is'} missing at {at:.2f} s"
                         f"{f' and {more} more places' if more else ''} (a stretch without sync bytes, unreadable: "
                         "the output goes on without their time)")
            said = f"{said}; {lost_said}" if said else lost_said
        if self._strays:
            k = len(self._strays)
            said = (f"{said}; {k} of them decoded out of order, after the gap, and left out" if said else
                    f"{k} picture{'s' if k > 1 else ''} decoded out of order, after later ones, left out")
        return said


def probed_further(options: dict | None = None) -> dict:
    """``options`` for :func:`av.open` with FFmpeg's probing taken to :data:`PROBE_SECONDS` and
    :data:`PROBE_BYTES`, for a file whose stream was not known at the first look."""
    return {**(options or {}), "analyzeduration": str(PROBE_SECONDS * 1_000_000), "probesize": str(PROBE_BYTES)}


def transport(container) -> bool:
    """Whether a file's clock is a transport's (FFmpeg's ``ts_discont`` formats: MPEG-TS, -PS),
    which may start anywhere and jump."""
    import av

    return bool(container.format.flags & av.format.Flags.ts_discont.value)


def transport_origin(container, first: float | None = None) -> float:
    """Where a file whose clock is a transport's starts, in seconds (its first picture ``first``,
    where given, or its first sound); 0 for any other file. (The video's own start may be a
    picture that does not decode: a capture cut mid-stream, whose first frame then came 0.4 s in.)"""
    if not transport(container):
        return 0.0
    streams = [*([] if first is not None else container.streams.video[:1]), *container.streams.audio[:1]]
    starts = [float(s.start_time * s.time_base) for s in streams if s.start_time is not None and s.time_base]
    return min([*starts, *([] if first is None else [first])], default=0.0)
