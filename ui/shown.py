"""Which frame the app's worker is on, and where a pause lands: on the frame on screen.

The worker goes on playing while a pause is on its way: frames processed meanwhile (in flight when
the user pressed Space) reach a window that has paused, which drops them
(:attr:`~ui.handoff.Packet.pauses`). :class:`ShownFrames` lets the worker go back to the frame the
window showed (:class:`~ui.commands.SetPaused` carries it) and keep those frames for the next steps
or play, each recorded once, and shown as it was drawn the first time while no setting changed
(the engine's video state, the tracker and the smoothing, is past them already). No Qt here.
"""

from __future__ import annotations

from collections import deque

from eigencam_live.video import Frame

from .handoff import Packet

__all__ = ["ShownFrames"]

#: Frames played before the last one that a pause may go back to: the window may be that far behind
#: (one on screen, one waiting in the mailbox, one processed meanwhile), and one more.
KEPT = 3


class ShownFrames:
    """The last frame processed (:attr:`last`: on screen, or its failure said), the frames played
    before it, the frames that wait after a pause went back over them, and which recording each
    went to (recordings are numbered from 1 as they start; 0: none), and its packet while it stays
    as drawn (:meth:`drawn`, :meth:`outdated`)."""

    def __init__(self) -> None:
        self.last: Frame | None = None
        self._recorded_in = 0  # the recording the last frame went to
        self._packet: Packet | None = None  # the last frame's, as drawn with the settings in use
        self._recordings = 0
        self._played: deque[tuple[Frame, int, Packet | None]] = deque(maxlen=KEPT)
        self._waiting: deque[tuple[Frame, int, Packet | None]] = deque()
        self._taken: tuple[Frame, int, Packet | None] | None = None  # the waiting frame given out last

    @property
    def waiting(self) -> bool:
        """Frames a pause went back over wait to be shown (they come before the source's next)."""
        return bool(self._waiting)

    def now_at(self, frame: Frame, played: bool) -> None:
        """``frame`` was processed: in play (``played``), or as a step, a seek, a redraw (which
        forget the frames played before). A frame drawn again, or given out by :meth:`take`,
        keeps the recording it went to."""
        if frame is self.last:
            recorded_in = self._recorded_in
        else:
            taken = self._taken
            recorded_in = taken[1] if taken is not None and taken[0] is frame else 0
            if played and self.last is not None:
                self._played.append((self.last, self._recorded_in, self._packet))
        if not played:
            self._played.clear()
        self.last, self._recorded_in, self._taken, self._packet = frame, recorded_in, None, None

    def drawn(self, packet: Packet) -> None:
        """The last frame's packet, as the window gets it."""
        if packet.frame is self.last:
            self._packet = packet

    def outdated(self) -> None:
        """A setting changed: the frames kept are drawn again when shown, not shown as they were."""
        self._packet = None
        self._played = deque(((frame, rec, None) for frame, rec, _ in self._played), maxlen=KEPT)
        self._waiting = deque((frame, rec, None) for frame, rec, _ in self._waiting)

    def recording_started(self) -> None:
        self._recordings += 1

    def recorded(self) -> None:
        """The last frame was written to the recording running now."""
        self._recorded_in = self._recordings

    def land_on(self, shown: Frame, keep: bool) -> bool:
        """The user paused with ``shown`` on screen: go back to it, the frames played after it
        waiting (before any that wait already) when ``keep`` (a file's, the demo clip's, which
        waits while paused), else let go (a camera's: its next frame is its newest). ``False``
        where ``shown`` is not among the frames kept (a window further behind): nothing changes."""
        if self.last is None or self.last is shown:
            return True
        at = next((i for i, (frame, _, _) in enumerate(self._played) if frame is shown), None)  # identity:
        if at is None:  # (a Frame's == compares its pixels)
            return False
        later = [*list(self._played)[at + 1 :], (self.last, self._recorded_in, self._packet)]
        if keep:
            self._waiting.extendleft(reversed(later))
        else:
            self._waiting.clear()
        self.last, self._recorded_in, self._packet = self._played[at]
        while len(self._played) > at:
            self._played.pop()
        return True

    def take(self) -> tuple[Frame, bool, Packet | None]:
        """The next waiting frame, whether to record it (not when the recording running now has
        it already), and its packet where it is to be shown as it was drawn (else ``None``)."""
        self._taken = self._waiting.popleft()
        frame, recorded_in, packet = self._taken
        return frame, recorded_in != self._recordings, packet

    def forget(self) -> None:
        """A jump (a seek) or a new source: nothing played before is gone back to, nothing waits."""
        self._played.clear()
        self._waiting.clear()
        self._taken = None
