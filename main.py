"""eigencam-live entry point.

    python main.py [--source SOURCE] [--model NAME] ...   the desktop app (default)
    python main.py annotate INPUT... [-o OUTPUT] ...      headless: annotate video files
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "annotate":
        # The headless path never imports Qt: it must run on servers without a display.
        from eigencam_live.cli import annotate_main

        return annotate_main(argv[1:])
    from ui.app import app_main

    return app_main(argv)


if __name__ == "__main__":
    try:
        code = main()
        if code in (130, 143):  # stopped, and said so: a signal now would only print a traceback at exit
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.exit(code)
    except KeyboardInterrupt:  # Ctrl-C before a front end took its signals over (torch loading): no traceback
        print("eigencam-live: interrupted", file=sys.stderr)
        sys.exit(130)
