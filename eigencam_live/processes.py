"""Whether a process of this machine still runs: files a dead run left (an annotate part file, an
unfinished ONNX export) are removed, a live run's never."""

from __future__ import annotations

import os

__all__ = ["alive"]


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
