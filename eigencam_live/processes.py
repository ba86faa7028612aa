"""Processes: whether one of this machine still runs (files a dead run left, an annotate part file
or an unfinished ONNX export, are removed, a live run's never), and ending this one at once."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

__all__ = ["alive", "end_process"]


def end_process(code: int) -> NoReturn:
    """Exit at once with ``code``, skipping the interpreter's teardown; stdout and stderr are
    flushed first.

    For a front end whose work is done and said (the app's window closed, its threads joined, any
    recording finished; ``annotate``'s outputs finished or removed) but where a normal exit would
    cost or break something: it took 2 to 4 s more on a loaded machine with torch imported (atexit
    handlers, then freeing every module and native library), and ended with ``terminate called
    without an active exception`` (exit 134) where a thread was still inside a native call (a
    model loading, which cannot be interrupted; a stage of ``annotate`` a second stop gave up on):
    C++ destructors ran under a live thread. ``os._exit`` runs none of that.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone: nothing more to say
            pass
    os._exit(code)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine). Unsure counts as alive."""
    if os.name == "nt" or pid <= 0:  # os.kill(pid, 0) would end the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, run by another user
        return True
    return True
