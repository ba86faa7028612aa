"""eigencam-live entry point.

    python main.py [--source SOURCE] [--model NAME] ...   the desktop app (default)
    python main.py annotate INPUT... [-o OUTPUT] ...      headless: annotate video files
"""

from __future__ import annotations

import sys
import threading
from typing import NoReturn


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "annotate":
        # The headless path never imports Qt: it must run on servers without a display.
        from eigencam_live.cli import annotate_main

        return annotate_main(argv[1:])
    from ui.splash import NoDisplayError, show_splash

    try:  # before torch is imported (4 s): no display is said at once, else a splash shows meanwhile
        show_splash(argv)
    except NoDisplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from ui.app import app_main

    return app_main(argv)


def run(argv: list[str] | None = None) -> NoReturn:
    """The command (``python main.py``, the installed ``eigencam-live``): :func:`main`, then the
    process ends with its code, whatever the user does meanwhile."""
    annotate = (sys.argv[1:] if argv is None else argv)[:1] == ["annotate"]
    try:
        code = main(argv)
        if annotate or code in (130, 143):
            # the run is over and said what it did: a signal now has nothing to stop (it ended the
            # process at exit, killed by it: 130 with nothing said, after a whole run)
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except KeyboardInterrupt:  # Ctrl-C before a front end took its signals over (torch loading): no traceback
        print(f"eigencam-live: interrupted: {'stopped; no output was finished' if annotate else 'stopped'}",
              file=sys.stderr)
        code = 130
    leave(code)


def leave(code: int) -> NoReturn:
    """``sys.exit(code)``; where a stage of ``annotate`` that a second stop gave up on is still in
    native code (a daemon thread inside torch: a hung device, a network still being prepared), at
    once (:func:`~eigencam_live.processes.end_process`): the interpreter's teardown under it aborted
    the process (a trial: "terminate called without an active exception", exit 134 instead of
    130). The run's files are finished or removed by then."""
    if any(t.daemon and t.is_alive() and t.name.startswith("annotate-") for t in threading.enumerate()):
        from eigencam_live.processes import end_process

        end_process(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
