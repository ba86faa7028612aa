"""Python's cyclic garbage collector, run on the GUI thread only while the app's worker threads run.

Left to itself, the collector runs in whichever thread happens to allocate when its thresholds are
crossed. In the engine's worker thread (a model listing its layers, a forward pass) it freed Qt
objects that had become garbage in a cycle (a closed window, its slots holding it), so Qt deleted
widgets outside the GUI thread: a segfault, seen in CI four times, always in a worker's signal
emission or the work just before it. While a worker runs, automatic collection is off and a timer
on the GUI thread collects what the thresholds ask for, as the collector would have; when no worker
is left, automatic collection is on again.
"""

from __future__ import annotations

import gc
import threading

from PyQt5.QtCore import QCoreApplication, QTimer

__all__ = ["WORKER_PREFIXES", "collect_on_gui_thread", "settle"]

#: The threads that run Python while the window is open: the engine's worker, the sources' capture.
WORKER_PREFIXES = ("eigencam-pipeline", "capture-")
#: How often the GUI thread looks at the collector's counts (a generation-0 collection takes ~1 ms).
INTERVAL_MS = 100

_timer: QTimer | None = None


def collect_on_gui_thread() -> None:
    """From now on (a worker is about to start), collect on the GUI thread only. Call it there."""
    global _timer
    app = QCoreApplication.instance()
    if app is None:
        return
    if _timer is None:
        _timer = QTimer(app)
        _timer.timeout.connect(_tick)
    if not _timer.isActive():
        gc.disable()
        _timer.start(INTERVAL_MS)


def _workers_alive() -> bool:
    return any(t.is_alive() and t.name.startswith(WORKER_PREFIXES) for t in threading.enumerate())


def _tick() -> None:
    """What the collector would have done meanwhile, here; automatic again once no worker is left."""
    counts, limits = gc.get_count(), gc.get_threshold()
    for generation in (2, 1, 0):
        if limits[generation] and counts[generation] > limits[generation]:
            gc.collect(generation)
            break
    settle()


def settle() -> None:
    """Back to automatic collection where no worker runs any more (else nothing changes)."""
    if _timer is not None and _timer.isActive() and not _workers_alive():
        _timer.stop()
        gc.enable()
