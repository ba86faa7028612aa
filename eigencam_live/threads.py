"""torch's thread count around the engine's calls, for engines whose ``threads`` is unset
(see :attr:`eigencam_live.engine.Engine.threads`)."""

from __future__ import annotations

import threading

import torch

__all__ = ["CallersThreads", "callers_threads"]


class CallersThreads:
    """torch's thread count as the process had it outside every engine call (for engines whose
    :attr:`Engine.threads` is unset). An engine call lowers the count in its thread, and torch
    also makes that the count a thread adopts at its first parallel op: a call that began inside
    another's would read 1 as its caller's, and restore 1. The count is read when the first call
    in flight begins; each thread's outermost call starts from it (its thread may have taken the
    1 of a call in flight: an ONNX Runtime session made now takes the count) and restores it at
    its end. (A thread that starts torch work, outside the engine, while a call is in flight may
    still take one thread.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._count = 1
        self._depth = threading.local()  # calls within calls in one thread (submit prepares)

    def enter(self) -> None:
        """A call begins: its thread at the caller's count if this is its outermost call."""
        self._depth.n = getattr(self._depth, "n", 0) + 1
        with self._lock:
            if self._in_flight == 0:
                self._count = torch.get_num_threads()
            self._in_flight += 1
            if self._depth.n == 1 and torch.get_num_threads() != self._count:
                torch.set_num_threads(self._count)

    def leave(self) -> None:
        """A call ends: the caller's count back in its thread if it was its outermost (before the
        call stops counting as in flight: a call beginning then reads the caller's count)."""
        self._depth.n -= 1
        with self._lock:
            if self._depth.n == 0 and torch.get_num_threads() != self._count:
                torch.set_num_threads(self._count)
            self._in_flight -= 1


#: The process's one record (torch's thread count is the process's).
callers_threads = CallersThreads()
