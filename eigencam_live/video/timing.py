"""Exact time: the nominal rate of a stream, the output time base that represents both the input's
ticks and the rate's frame duration, and the snapping of constant-rate frames onto their grid.

Containers round timestamps to their own clock: Matroska and WebM store milliseconds (29.97 fps
gives 0, 33, 67, 100 ms...), an MP4 written at 1/90000 s stores 23.976 fps as 3754, 3753, ... ticks.
Written as they came, such frames make a player compute a rate such as 1800000/60071. A frame that
lies within one input tick of the nominal grid is written on the grid instead (exact, and still
within one tick of its input timestamp); a frame off the grid (true variable frame rate) keeps its
own timestamp.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from fractions import Fraction

__all__ = ["Gaps", "Joins", "RateGrid", "nominal_rate", "output_time_base"]

#: Rates above this are time-base artefacts (FFmpeg's guess for a stream without a rate is often
#: its tick rate: 1000 for Matroska, 90000 for MPEG-TS), not frame rates.
MAX_PLAUSIBLE_RATE = 240
#: The largest output clock (ticks per second) chosen to represent an input exactly: MP4 stores
#: 32-bit sample durations, and a finer clock buys nothing a player can show.
MAX_TIMESCALE = 1_000_000
#: The output clock when nothing finer is needed: 1/90000 s represents NTSC (3003 ticks), PAL and
#: film frame durations exactly.
DEFAULT_TIMESCALE = 90000


def _valid(rate: Fraction | None) -> bool:
    return rate is not None and 0 < rate <= MAX_PLAUSIBLE_RATE


def nominal_rate(average: Fraction | None, *others: Fraction | None) -> Fraction | None:
    """The stream's rate as an exact fraction, or ``None`` when it has none.

    Args:
        average: frames / duration as the demuxer measured it (``avg_frame_rate``); rounded
            container timestamps make it a fraction such as 2700000/112613 for 24000/1001.
        others: the container's or codec's declared rates (``r_frame_rate``, the guessed rate),
            preferred when one lies within 0.2 % of the average: it is the rate the file was made at.
    """
    declared = [Fraction(r) for r in others if _valid(r)]
    if not _valid(average):
        return min(declared, key=lambda r: r.denominator) if declared else None
    average = Fraction(average)
    close = [r for r in declared if abs(r / average - 1) < Fraction(2, 1000)]
    if close:
        return min(close, key=lambda r: r.denominator)
    from .frames import as_rate

    return as_rate(float(average)) if average.denominator > 1001 else average


def output_time_base(rate: Fraction, input_time_base: Fraction | None = None) -> Fraction:
    """``1/T`` where ``T`` ticks per second hold one frame of ``rate`` and one tick of the input
    exactly (``T = lcm(rate numerator, input ticks per second)``).

    When that clock would be finer than :data:`MAX_TIMESCALE`, the input's own clock wins (every
    timestamp stays exact; a constant rate it cannot represent was not on it either), then the
    rate's, then 1/90000 s.
    """
    need = [rate.numerator]
    if input_time_base is not None and input_time_base > 0:
        need.append(Fraction(input_time_base).denominator)
    scale = math.lcm(*need)
    if scale < DEFAULT_TIMESCALE and DEFAULT_TIMESCALE % scale == 0:
        scale = DEFAULT_TIMESCALE  # a common clock for common inputs (and at least 1/90000 s)
    if scale <= MAX_TIMESCALE:
        return Fraction(1, scale)
    for fallback in need[::-1]:
        if fallback <= MAX_TIMESCALE:
            return Fraction(1, fallback)
    return Fraction(1, DEFAULT_TIMESCALE)


class RateGrid:
    """Snaps timestamps that sit on a constant-rate grid (closer than ``tolerance`` seconds, the
    input's tick: what storing a grid point in whole ticks moves it by) onto it.

    The grid starts at the first timestamp given and advances by ``1 / rate``; a timestamp a whole
    tick or more from every grid point is returned unchanged (variable frame rate: a GIF's frame
    one 10 ms tick from its average rate's grid was moved onto it).
    """

    def __init__(self, rate: Fraction, tolerance: Fraction) -> None:
        self.rate = Fraction(rate)
        self.tolerance = Fraction(tolerance)
        self.origin: Fraction | None = None

    def snap(self, seconds: Fraction) -> Fraction:
        """``seconds`` (exact) on the grid when it is within the tolerance of a grid point."""
        if self.origin is None:
            self.origin = seconds
            return seconds
        steps = round((seconds - self.origin) * self.rate)
        on_grid = self.origin + steps / self.rate
        return on_grid if abs(on_grid - seconds) < self.tolerance else seconds

    def span(self, seconds: Fraction) -> Fraction:
        """A frame's duration (exact) as whole frame intervals when within the tolerance of them: the
        last frame of a 30 fps Matroska file, stored as 33 ms, lasts 1/30 s (the track then ends on
        the grid); a picture held longer keeps its own duration."""
        steps = round(seconds * self.rate)
        on_grid = steps / self.rate
        return on_grid if steps >= 1 and abs(on_grid - seconds) < self.tolerance else seconds


#: A transport's clock wraps: 33 bits of 1/90000 s.
WRAP_SECONDS = (1 << 33) / 90000


def _wraps(seconds: float) -> int:
    """How many wraps FFmpeg added to a transport's timestamp (33 bits: 0 <= its own < WRAP_SECONDS)."""
    return int(seconds // WRAP_SECONDS)


class Joins:
    """A transport stream's clock made continuous where it starts again: a file of recordings
    joined end to end (``cat a.ts b.ts``: each part's clock starts anew).

    As FFmpeg's own tools do, a step of the video's clock back by more than :attr:`BACK` seconds,
    or ahead by more than :attr:`AHEAD`, is a join: what follows is shifted to go on where the
    video was. The video decides each join's shift; the audio takes the same one, so the sound
    keeps its place against the picture. The audio's own step back is the next join (it waits
    for the video to find it); its step ahead is that join where the video's restarted within
    :attr:`NEAR` seconds of the same clock value, and a gap (a dropout, kept) once the video has
    passed that time without one. Joins are matched in order: a part without sound makes the
    sound of the parts after it take the shift of the join before (early by that part). Before,
    the frames after a join were written one tick apart and the sound after it was dropped.
    """

    BACK, AHEAD, NEAR = 0.1, 10.0, 1.0

    def __init__(self) -> None:
        self._joins: list[tuple[float, float]] = []  # (the clock value it restarted at, the shift from there on)
        self._steps: list[tuple[float, float]] = []  # (continuous seconds where it is, the clock's step there)
        self._video_end = 0.0  # where the video has got to, continuous
        self._lock = threading.Lock()

    @property
    def joined(self) -> bool:
        """Whether a join was found (the file's duration then spans its parts' clocks, not its length)."""
        return bool(self._joins)

    def describe(self, origin: float = 0.0) -> str | None:
        """The joins found, in a few words (on the continuous clock less ``origin``: the output's),
        else ``None``. A step ahead may also be a long stretch lost (signal lost while recording)."""
        with self._lock:
            steps = list(self._steps)
        if not steps:
            return None
        at, step = steps[0]
        where = f"at {at - origin:.2f} s" if len(steps) == 1 else f"at {len(steps)} places, the first at {at - origin:.2f} s"
        why = "recordings joined end to end" if step < 0 else "recordings joined end to end, or a stretch lost"
        return (f"its clock starts again {where} (it jumps {'back' if step < 0 else 'ahead'} {abs(step):.1f} s: "
                f"{why}); the output goes on without the jump{'s' if len(steps) > 1 else ''}")

    def track(self, decides: bool = False) -> JoinedTrack:
        """The clock of one track (its own count of joins passed); ``decides``: the video's."""
        return JoinedTrack(self, decides)


class JoinedTrack:
    """One track's timestamps through :class:`Joins`: :meth:`place` them in order."""

    def __init__(self, joins: Joins, decides: bool) -> None:
        self._joins = joins
        self._decides = decides
        self._passed = 0  # joins this track has passed
        self._shift = 0.0
        self._end: float | None = None  # where the track's last frame or packet ends, continuous

    @property
    def passed(self) -> int:
        """The joins this track has passed."""
        return self._passed

    def place(self, seconds: float, duration: float, *, decide: bool = False) -> float | None:
        """``seconds``, the next timestamp of the track (lasting ``duration``), on the continuous
        clock; ``None`` (nothing changed) at a step the video has not reached yet, unless this
        track is told to ``decide`` it (the audio, once the video has ended: its own clock)."""
        at = seconds + self._shift
        back = self._end is not None and at < self._end - Joins.BACK
        ahead = self._end is not None and at > self._end + Joins.AHEAD
        joins = self._joins
        took = self._passed
        with joins._lock:
            if back or ahead:
                if self._decides:
                    joins._joins.append((seconds, self._shift + self._end - at))  # on where the video was
                    # the step as recorded: FFmpeg moves a part whose clock is over 60 s behind the
                    # first part's start on by a wrap, its guard (and one far above it back by one)
                    wraps = _wraps(seconds) - _wraps(self._end - self._shift)
                    joins._steps.append((self._end, at - self._end - wraps * WRAP_SECONDS))
                    self._take(seconds)
                elif self._passed < len(joins._joins) and (back or abs(joins._joins[self._passed][0] - seconds) <= Joins.NEAR):
                    self._take(seconds)
                elif ahead and joins._video_end >= at:  # the video passed this time without a join: a gap
                    pass
                elif decide:
                    if back:  # on where the sound was
                        self._shift += self._end - at
                else:
                    return None
                at = seconds + self._shift
            # from a join on, the track's end is where it goes on (the sound placed by the video's shift
            # may start before its own end: its next packets were taken for a step back, waited to
            # the end of the run and were then laid after it, 0.3 s late: a trial)
            self._end = at + duration if self._end is None or self._passed != took else max(self._end, at + duration)
            if self._decides:
                joins._video_end = self._end
        return at

    def _take(self, seconds: float) -> None:
        """Pass the next join (its shift)."""
        self._shift = self._joins._joins[self._passed][1]
        self._passed += 1


class Gaps:
    """Frames missing from a transport stream (MPEG-TS, MPEG-PS): its demuxer drops a damaged
    stretch without a word (no packet is refused, and its frame count is only an estimate from its
    duration), and the frames after it come later on the clock than the next frame was due.

    :meth:`see` takes each frame's time in order (seconds from where the output starts, across
    joins): a step of more than :attr:`FACTOR` usual steps (the median of the last few) is a gap of
    ``round(step / usual) - 1`` frames, unless :attr:`RATE_STEPS` long steps in a row agree within
    10 %: the rate changed (a 50p broadcast going to 25p), and the steps are counted afresh, unless
    the old rate comes back within a few steps (a bad signal losing two frames in three). Film
    telecined in 29.97 fps video alternates steps of 1 and 1.5 frames: no gap. A gap is counted
    once however often a loop or a seek meets it again. Thread-safe: the capture thread sees
    frames while another thread reads :meth:`describe`.
    """

    FACTOR = 1.8
    KEPT = 9  # steps the usual one is the median of
    RATE_STEPS = 3  # long steps in a row, alike, that are a new rate
    PLACES = 10_000  # gaps remembered (a long live stream's losses): later ones are not counted

    def __init__(self) -> None:
        self._steps: deque[float] = deque(maxlen=self.KEPT)
        self._last: float | None = None
        self._pending: list[tuple[int, tuple[float, float, int], float]] = []  # long steps in a row
        self._found: dict[int, tuple[float, float, int]] = {}  # ms of the frame before -> (from, to, frames)
        self._missing = 0
        self._first: tuple[float, float, int] | None = None
        self._tentative: tuple[dict, list[float], int] | None = None  # a new rate: the gaps at the old one,
        # its steps, and the short steps in a row since (see see())
        self._since = 0  # steps since that new rate
        self._said: str | None = None
        self._lock = threading.Lock()

    def see(self, seconds: float) -> None:
        """The next frame's time (seconds)."""
        with self._lock:
            last, self._last = self._last, seconds
            if last is None or seconds <= last:
                return
            step = seconds - last
            usual = statistics.median(self._steps) if self._steps else None
            if self._tentative is not None:  # a new rate, until the old one comes back within a few steps
                gaps, before, shorts = self._tentative
                old = statistics.median(before)
                if step > self.FACTOR * old:  # a gap at the old rate, should it come back
                    gaps[round(last * 1000)] = (round(last * 1000), (last, seconds, round(step / old) - 1), step)
                shorts = shorts + 1 if usual is not None and step * self.FACTOR < usual else 0
                if shorts >= 2:  # it came back (two short steps: one is jitter): they were gaps
                    self._tentative = None
                    kept = {key: entry for key, entry in ((e[0], e) for e in self._pending)}
                    self._pending = list({**kept, **gaps}.values())  # (each gap at the old rate)
                    for key in gaps:  # counted at the new rate meanwhile: again, at the old one
                        if key in self._found:
                            self._missing -= self._found.pop(key)[2]
                    self._steps = deque(before, maxlen=self.KEPT)
                    self._settle()
                    self._steps.append(step)
                    return
                self._since += 1
                self._tentative = None if self._since >= self.KEPT else (gaps, before, shorts)
            if usual is None or step <= self.FACTOR * usual:
                self._settle()  # the long steps before were gaps
                self._steps.append(step)
                return
            self._pending.append((round(last * 1000), (last, seconds, round(step / usual) - 1), step))
            if len(self._pending) >= self.RATE_STEPS:
                steps = [s for _, _, s in self._pending]
                if max(steps) <= 1.1 * min(steps):  # a new rate
                    self._tentative, self._since = ({e[0]: e for e in self._pending}, list(self._steps), 0), 0
                    self._pending.clear()
                    self._steps.clear()
                    self._steps.extend(steps)
                else:  # the oldest was a gap; the others may begin a new rate
                    self._pending, rest = self._pending[:1], self._pending[1:]
                    self._settle()
                    self._pending = rest

    def _settle(self) -> None:
        for key, gap, _ in self._pending:
            if key not in self._found and len(self._found) < self.PLACES:
                self._found[key] = gap
                self._missing += gap[2]
                self._first = gap if self._first is None or gap < self._first else self._first
        self._pending.clear()
        if self._first is not None:
            (start, end, _), n, places = self._first, self._missing, len(self._found)
            where = (f"between {start:.2f} and {end:.2f} s" if places == 1 else
                     f"in {places} places, the first between {start:.2f} and {end:.2f} s")
            self._said = (f"{n} frame{'s are' if n > 1 else ' is'} missing {where} (a gap in its timestamps: dropped "
                          "by its recorder, or lost; the frame before it is held)")

    def restart(self) -> None:
        """At a break in the frames (a seek, the end): the next frame follows no frame seen; long
        steps just before count as gaps (no usual step came after them to say otherwise)."""
        with self._lock:
            self._last = None
            self._tentative = None  # a new rate that held to here stands (a review: a loop's first step undid it)
            self._settle()

    @property
    def missing(self) -> int:
        """The frames missing in all the gaps found (those not yet confirmed included)."""
        with self._lock:
            return self._missing + sum(gap[2] for _, gap, _ in self._pending)

    def describe(self) -> str | None:
        """The gaps found in a few words, e.g. ``11 frames are missing between 2.60 and 3.00 s (...)``."""
        with self._lock:  # (a gap is said once the step after it confirms it, or at a break)
            return self._said
