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
    in flight begins and restored by each at its end. (A thread that starts torch work, outside
    the engine, while a call is in flight may still take one thread.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._count = 1
        self._depth = threading.local()  # calls within calls in one thread (submit prepares)

    def enter(self) -> int:
        """A call begins; returns the count to restore at its end."""
        self._depth.n = getattr(self._depth, "n", 0) + 1
        with self._lock:
            if self._in_flight == 0:
                self._count = torch.get_num_threads()
            self._in_flight += 1
            return self._count

    def leave(self) -> bool:
        """A call ends; ``True`` when it was its thread's outermost (the count is restored then)."""
        self._depth.n -= 1
        with self._lock:
            self._in_flight -= 1
        return self._depth.n == 0


#: The process's one record (torch's thread count is the process's).
callers_threads = CallersThreads()
