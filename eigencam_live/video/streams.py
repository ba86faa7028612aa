"""Network streams (rtsp, rtmp, http, ...), decoded by PyAV as a file is (:class:`StreamSource`):
live, reconnected on demand, paced by their own timestamps or, where they have none (MJPEG over
HTTP), by the arrival of their frames."""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from eigencam_live.errors import SourceError

from .files import FileSource, _av_reason
from .frames import Frame
from .interrupt import cancellable

__all__ = ["STREAM_SCHEMES", "STREAM_TIMEOUT", "StreamSource", "shown_url"]

#: What :func:`~.sources.open_source` opens as a live network stream.
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
#: ``(open, read)``: seconds a network stream may take to open, and may send nothing while it plays.
STREAM_TIMEOUT = (5.0, 5.0)
#: A stream timestamp this far (seconds) from where arrival times put it is a restarted clock.
CLOCK_JUMP_S = 3.0
#: A frame that took this long (seconds) to come was not held at a timeout (see _held_since).
_FLOWING_S = 0.01
#: The names of fields whose value is a secret, whole or as their name's last word (``api_key``, ``X-Auth-Token``).
_SECRETS = (r"(?:pwd|psw|pass|passwd|password|passcode|loginpas|secret|token|accesstoken|jwt|key|apikey|auth|sig"
            r"|signature|hmac|hdnts)")
#: Such a field in a query or a fragment (``?user=admin&pwd=...``), its value up to the next field.
_SECRET_IN_QUERY = re.compile(rf"((?:^|[&;?#])(?:[^&;=?#]*[_.-])?{_SECRETS}=)[^&;#]+", re.I)
#: ... and in a path, where some cameras put it (XMEye's ``/user=admin&password=...&channel=1``,
#: or ``_``-separated): the value up to the next field, ``_`` or ``/``.
_SECRET_IN_PATH = re.compile(rf"((?:^|[&;_/])(?:[^&;=_/]*[.-])?{_SECRETS}=)[^&;_/]+", re.I)
#: FFmpeg's AVFMT_NOTIMESTAMPS: the container format carries no timestamps (MJPEG over HTTP).
_NO_TIMESTAMPS = 0x0080


def shown_url(url: str) -> str:
    """``url`` as it may be shown and said: a password in it as ``***`` (a camera's, on a projector
    in a talk: the source list, the window's title and every message showed it), and the value of
    a password, token or key field in its query, fragment or path (``?user=admin&pwd=...``: Foscam's,
    Reolink's cameras; XMEye's ``/user=admin&password=...``; an HLS link's token). Anything else is
    given back as it is."""
    try:
        parts = urlsplit(url)
    except ValueError:  # (not a URL this parses: its fields, if any, all the same)
        return _SECRET_IN_QUERY.sub(r"\1***", url)
    if parts.password is not None:
        parts = parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}")
    parts = parts._replace(path=_SECRET_IN_PATH.sub(r"\1***", parts.path),
                           query=_SECRET_IN_QUERY.sub(r"\1***", parts.query),
                           fragment=_SECRET_IN_QUERY.sub(r"\1***", parts.fragment))
    shown = urlunsplit(parts)
    return url if shown == urlunsplit(urlsplit(url)) else shown


class StreamSource(FileSource):
    """A network stream (rtsp, rtmp, http, ...), decoded by PyAV. Live; reconnects on demand.

    Timestamps are the stream's own, in seconds since the source started: a burst of frames that
    arrived together keeps the spacing it was filmed with (the capture plays it out at that pace).
    After a (re)connection, or where the stream's clock jumps, they continue from the time of
    arrival. RTSP is tried over TCP, then over UDP.

    Args:
        url: the stream.
        timeout: ``(open, read)`` seconds: how long opening may take, and how long the stream may
            send nothing while it plays, before it counts as lost (:attr:`last_error` says
            "no data from URL for N s").
        cancel: set (from any thread) to abort opening or reading at once; :meth:`interrupt`
            sets it. The caller may pass its own to abort the constructor itself.

    Raises:
        SourceError: the stream cannot be opened (one line), or ``cancel`` was set meanwhile.
    """

    kind = "stream"

    def __init__(self, url: str, *, timeout: tuple[float, float] = STREAM_TIMEOUT,
                 cancel: threading.Event | None = None) -> None:
        opening, reading = (float(t) for t in timeout)
        if not (opening > 0 and reading > 0):
            raise ValueError(f"timeout must be two positive numbers of seconds. Got {timeout!r}")
        self._stream_timeouts = (opening, reading)
        self._cancel = cancel if cancel is not None else threading.Event()
        # RTSP: TCP first (it passes firewalls and loses nothing), UDP where a server offers only that.
        rtsp = url.lower().startswith(("rtsp://", "rtsps://"))
        self._transports: list[str | None] = ["tcp", "udp"] if rtsp else [None]
        #: Why the stream last stopped delivering frames (for a status line), ``None`` while it plays.
        self.last_error: str | None = None
        self._began = time.monotonic()  # (FileSource's _start is the stream's own first time)
        self._shift: float | None = None  # live pts - stream pts, fixed at each (re)connection
        self._last: tuple[float, float] | None = None  # (live pts, arrival) of the newest frame
        self._op_started = self._began
        self._opening = False
        self._arrival_clock = False  # the stream has no timestamps of its own (see _open)
        self._held_since: float | None = None  # frames given out at a read's timeout: their data's time
        super().__init__(url, options={})

    def _describe(self) -> str:
        return shown_url(self.path)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def interrupt(self) -> None:
        """Abort a blocking open or read from another thread (within about 0.1 s); the source is
        done for after this."""
        self._cancel.set()

    def _timeouts(self) -> tuple[float, float]:
        return self._stream_timeouts

    def _reason(self, exc: Exception) -> str:
        import av

        if self._cancel.is_set():
            return "cancelled"
        # FFmpeg reports its own timeout as "Immediate exit requested", and a probe that timed out
        # before any data came as "Invalid data found": say what happened instead.
        waited = time.monotonic() - self._op_started
        limit = self._stream_timeouts[0 if self._opening else 1]
        if isinstance(exc, av.ExitError) or waited >= 0.9 * limit:
            return f"no data from {self._describe()} for {limit:g} s"
        if isinstance(exc, av.ProtocolNotFoundError):
            return f"this FFmpeg build (PyAV's) cannot open {self.path.split(':', 1)[0]}:// streams"
        return _av_reason(exc)

    def _open(self) -> None:
        if self._cancel.is_set():
            raise SourceError(f"opening {self._describe()} was cancelled")
        failures = []
        for transport in list(self._transports):
            self._options = {"rtsp_transport": transport} if transport else {}
            self._opening = True
            self._op_started = time.monotonic()
            try:
                with cancellable(self._cancel):
                    super()._open()
            except SourceError as exc:
                if self._cancel.is_set():
                    raise SourceError(f"opening {self._describe()} was cancelled") from None
                failures.append((transport, exc))
                continue
            finally:
                self._opening = False
            if transport is not None:  # the one that worked goes first next time
                self._transports.remove(transport)
                self._transports.insert(0, transport)
            self._shift = None
            self._held_since = None
            self.origin = 0.0  # (its times count from the source's start, not from its own clock's)
            self.last_error = None
            # MJPEG over HTTP (multipart) carries no timestamps: FFmpeg makes them up at 25 fps, and
            # a camera sending 15 or 30 would be played out at the wrong pace (lag, drops, a
            # recording too fast). Such a stream's clock is the frames' arrival.
            self._arrival_clock = bool(self._container.format.flags & _NO_TIMESTAMPS)
            return
        if len(failures) == 1:
            exc = failures[0][1]
            reason = _without_prefix(str(exc), self._describe())
            if reason.startswith("no data from "):
                raise SourceError(reason) from exc
            raise exc
        reasons = "; ".join(f"over {t.upper()}: {_without_prefix(str(e), self._describe())}" for t, e in failures)
        raise SourceError(f"cannot open {self._describe()} ({reasons})") from failures[-1][1]

    def _decode_next(self, *, first: bool = False):
        import av

        if first:
            return super()._decode_next(first=True)  # within _open's cancellable block
        started = self._op_started = time.monotonic()
        try:
            with cancellable(self._cancel):
                frame = next(self._frames)
            waited = time.monotonic() - started
            tb = frame.time_base
            step = (float((frame.pts - self._last_raw) * tb) if None not in (frame.pts, self._last_raw, tb)
                    else None)
            if waited >= self._stream_timeouts[1] and step is not None and step < waited / 2:
                # The read timed out: FFmpeg gives out what its demuxer and decoder held (the last
                # frames sent), then the error. Their data came before this wait (the stream's clock
                # did not go on with it): they are dated so (a stream that stopped said "no frame
                # for 0 s" as they came, 5 s on). Only those, given out at once: a frame waited for
                # is a stream that goes on (a review: a picture that paused 6 s while its sound
                # flowed dated every later frame at the pause).
                self._held_since = started
            elif waited > _FLOWING_S:
                self._held_since = None
            return frame
        except StopIteration:
            self.last_error = f"{self._describe()} ended the stream"
        except av.FFmpegError as exc:
            self.last_error = self._reason(exc)
        except OSError as exc:
            self.last_error = f"{self._describe()}: {exc.strerror or exc}"
        return None

    def read(self) -> Frame | None:
        frame = super().read()
        if frame is None:
            self._held_since = None
            if self.last_error is None and self._container is None:
                self.last_error = "cancelled" if self._cancel.is_set() else f"{self._describe()} is closed"
            return None  # the capture thread treats this as a drop-out and reconnects
        came = frame.captured if self._held_since is None else self._held_since
        return Frame(frame.image, frame.index, self._live_pts(frame.pts, came), came)

    def _live_pts(self, pts: float, arrival: float) -> float:
        """The stream's timestamp ``pts`` on the source's clock (seconds since it started)."""
        since_start = arrival - self._began
        if self._arrival_clock:  # no timestamps of its own: each frame is due when it arrives
            live = since_start if self._last is None else max(since_start, self._last[0] + 1e-6)
            self._last = (live, arrival)
            return live
        if self._shift is None:
            self._shift = since_start - pts  # (re)connected: this frame is "now"
        live = pts + self._shift
        if self._last is not None:
            previous, previous_arrival = self._last
            expected = previous + (arrival - previous_arrival)
            if abs(live - expected) > CLOCK_JUMP_S or live <= previous:
                # The server restarted its clock (or it wrapped): continue from the arrival time.
                self._shift = max(since_start, previous + 1 / float(self.info.rate)) - pts
                live = pts + self._shift
        self._last = (live, arrival)
        return live

    def _check_complete(self) -> None:
        pass

    def reopen(self) -> None:
        count = self._count
        self.close()
        self._open()
        self._count = count


def _without_prefix(message: str, url: str) -> str:
    for prefix in (f"cannot open {url} as a video: ", f"cannot decode {url}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message
