"""The hand-off of finished frames from the worker to the GUI: newest only, never a backlog."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from eigencam_live.engine import FrameResult
from eigencam_live.video import Frame

__all__ = ["NewestOnly", "Packet"]


@dataclass
class Packet:
    """One finished frame for display.

    Attributes:
        image: ``(H, W, 3)`` uint8 BGR, what is shown (the engine's ``result.picture``; owned: never
            touched again by the worker).
        frame: the source's ``Frame`` (raw image, index, pts, captured time).
        result: the engine's :class:`FrameResult`.
        process_ms: engine time of this frame (map and picture), milliseconds.
        done: ``time.monotonic()`` when the worker finished it.
        started: ``time.monotonic()`` when the worker began it.
        origin: ``time.monotonic()`` when the frame was due on screen, where its latency starts:
            its capture time for a live source, the moment its own time came for a file (decoded
            ahead, it waited in the queue only for that).
        seconds: the frame's time from the source's start, as players show it (``frame.pts`` is on
            the source's own clock, which in an MPEG-TS starts anywhere: 1.4 s as FFmpeg writes it).
        still: a folder's image: its file name (``None`` for other sources).
        played: processed in play (not a step, a seek, a redraw).
        pauses: how many of the window's pauses the worker had taken when it made this packet. A
            played one with fewer than the window has sent was in flight at the last pause, and is
            not shown, paused or not by the time it comes (the pause stays on the frame on screen,
            and play goes on from it; see :class:`~ui.commands.SetPaused`).
    """

    image: np.ndarray
    frame: Frame
    result: FrameResult
    process_ms: float
    done: float
    started: float = 0.0
    origin: float = 0.0
    seconds: float = 0.0
    still: str | None = None
    played: bool = False
    pauses: int = 0


class NewestOnly:
    """A one-packet slot: the worker overwrites it; :meth:`put` says whether to notify the GUI
    (only when the GUI has taken the previous packet, so at most one notification is queued)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._packet: Packet | None = None
        self._pending = False

    def put(self, packet: Packet) -> bool:
        with self._lock:
            self._packet = packet
            notify, self._pending = not self._pending, True
        return notify

    def take(self) -> Packet | None:
        with self._lock:
            packet, self._packet = self._packet, None
            self._pending = False
        return packet
