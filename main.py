"""eigencam-live entry point.

    python main.py [--source SOURCE] [--model NAME] ...   the desktop app (default)
    python main.py annotate INPUT... [-o OUTPUT] ...      headless: annotate video files
"""

from __future__ import annotations

import os
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "annotate":
        # The headless path never imports Qt: it must run on servers without a display.
        from eigencam_live.cli import annotate_main

        return annotate_main(argv[1:])
    from ui.app import app_main

    return app_main(argv)


def leave(code: int) -> None:
    """``sys.exit(code)``; where a stage of ``annotate`` that a second stop gave up on is still in
    native code (a daemon thread inside torch: a hung device, a trace that takes minutes), output
    flushed, then ``os._exit``: the interpreter's teardown under a running native thread aborted the
    process (a trial: "terminate called without an active exception", exit 134 instead of 130)."""
    if any(t.daemon and t.is_alive() and t.name.startswith("annotate-") for t in threading.enumerate()):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a reader gone: nothing more to say
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    try:
        code = main()
        if sys.argv[1:2] == ["annotate"] or code in (130, 143):
            # the run is over and said what it did: a signal now has nothing to stop (it ended the
            # process at exit, killed by it: 130 with nothing said, after a whole run)
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        leave(code)
    except KeyboardInterrupt:  # Ctrl-C before a front end took its signals over (torch loading): no traceback
        said = "stopped; no output was finished" if sys.argv[1:2] == ["annotate"] else "stopped"
        print(f"eigencam-live: interrupted: {said}", file=sys.stderr)
        leave(130)
