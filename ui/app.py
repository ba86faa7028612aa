"""``python main.py [--source SOURCE] [--model NAME] ...``: the desktop app's entry point.

Settings come from, in order of precedence: the command line (options actually typed), the last
run (QSettings), and the library's defaults.

Ctrl-C (SIGINT) and SIGTERM close the window as its close button does (settings saved, threads
joined, a recording finished) and the process exits 130 or 143 (128 + the signal), without a
traceback (:class:`StopSignals`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
from dataclasses import fields, replace

from eigencam_live.cli import pipes_may_close
from eigencam_live.engine import EngineConfig
from eigencam_live.errors import ConfigError, EigenCamError
from eigencam_live.models import model_kind
from eigencam_live.options import (
    OneLineParser,
    add_engine_options,
    add_render_options,
    engine_config_from_args,
    list_layers,
    network_threads,
    quiet_native_logs,
    render_config_from_args,
    typed_options,
)
from eigencam_live.processes import end_process
from eigencam_live.render import RenderConfig

from . import settings as remembered
from .splash import close_splash

__all__ = ["StopSignals", "app_main", "build_parser", "configs_from", "end_process"]

ORGANIZATION = "eigencam-live"
APPLICATION = "eigencam-live"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python main.py",
        description="eigencam-live: see, live, where a neural network looks (Eigen-CAM). "
        "Opens the desktop app; `python main.py annotate --help` for the headless command.",
    )
    parser.add_argument("--source", "-s", default=None, metavar="SOURCE",
                        help="demo (a built-in real clip, looping), a camera index (0, 1...), a video file, a folder "
                             "of images, a stream URL, or scene (a synthetic scene) (default: the last one used, else "
                             "camera 0 if connected, else demo)")
    parser.add_argument("--demo-size", default="640x480", metavar="WxH", help="size of the synthetic scene, --source scene (default: %(default)s)")
    parser.add_argument("--demo-fps", type=float, default=30.0, metavar="FPS", help="rate of the synthetic scene (default: %(default)s)")
    parser.add_argument("--snapshots", default=None, metavar="DIR",
                        help="folder for snapshots and recordings (default: ~/Pictures/eigencam-live)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="CPU threads for the network (default: all cores but one, left to the window "
                             "and the capture)")
    parser.add_argument("--no-settings", action="store_true", help="neither read nor save remembered settings")
    parser.add_argument("--screenshot", default=None, metavar="PNG", help=argparse.SUPPRESS)
    add_engine_options(parser)
    add_render_options(parser)
    return parser


def default_source() -> str | int:
    """Camera 0 when one is connected, else the built-in demo clip."""
    from eigencam_live.video import list_cameras

    return 0 if list_cameras(1) else "demo"


def configs_from(args: argparse.Namespace, typed: set[str], settings) -> tuple[EngineConfig, RenderConfig]:
    """Defaults <- remembered settings (:mod:`ui.settings`) <- typed options."""
    engine, render = remembered.load_configs(settings) if settings is not None else (EngineConfig(), RenderConfig())
    from_args_e = engine_config_from_args(args, typed)
    from_args_r = render_config_from_args(args)
    changes = {f.name: getattr(from_args_e, f.name) for f in fields(EngineConfig) if f.name in typed}
    if "model" in typed and "layer" not in typed and changes["model"] != engine.model:
        changes["layer"] = None  # a remembered layer belongs to the remembered model (a trial: dropped for it too)
    if "model" in typed and "weights" not in typed and changes["model"] != engine.model:  # nor its weights
        changes["weights"] = remembered.weights_for(changes["model"], engine.weights)
    if "weights" in typed and "model" not in typed and model_kind(engine.model) == "onnx":
        # (a review: --weights imagenet was taken for a remembered ONNX file, which --model refuses)
        raise ConfigError(f"the model in use, remembered from the last run, is the ONNX file {engine.model}, which "
                          "holds its own weights: leave --weights out, or name the model it is for (--model)",
                          field="weights")
    engine = replace(engine, **changes)
    render = replace(render, **{f.name: getattr(from_args_r, f.name) for f in fields(RenderConfig) if f.name in typed})
    return engine, render


#: Signals that close the app; the process then exits ``128 + signal``.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopped(KeyboardInterrupt):
    """A stop signal that arrived before the window opened (while torch or the model loads)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_before_window(signum: int, frame: object) -> None:
    raise _Stopped(signum)


class StopSignals:
    """SIGINT and SIGTERM, handled on the GUI thread: the window closes as its close button does.

    Python runs a signal handler only when the interpreter gets control, and Qt's event loop may
    wait in C for a long time. So the C-level handler's wake-up byte (:func:`signal.set_wakeup_fd`,
    the signal's number) goes to one end of a socket pair, whose other end a ``QSocketNotifier``
    watches: the event loop wakes at once and :meth:`_drain` closes every window and quits. The
    Python handler itself only records the signal (a ``KeyboardInterrupt`` raised inside a Qt slot
    aborts the process). A second signal while closing changes nothing: the close is under way.

    Attributes:
        received: the first stop signal's number, ``None`` until one arrives.
    """

    def __init__(self, app) -> None:
        from PyQt5.QtCore import QSocketNotifier

        self.app = app
        self.received: int | None = None
        self._read, self._write = socket.socketpair()
        for end in (self._read, self._write):
            end.setblocking(False)
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Read)
        self._notifier.activated.connect(self._drain)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._previous = {sig: signal.signal(sig, self._record) for sig in STOP_SIGNALS}

    @property
    def exit_code(self) -> int | None:
        """``128 + signal`` once a stop signal arrived (130 for SIGINT, 143 for SIGTERM)."""
        return None if self.received is None else 128 + self.received

    def _record(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signum

    def _drain(self) -> None:
        try:
            data = self._read.recv(256)
        except (BlockingIOError, InterruptedError):
            data = b""
        for signum in data:  # the wake-up bytes are the signals' numbers
            if signum in STOP_SIGNALS and self.received is None:
                self.received = signum
        if self.received is not None:
            self.app.closeAllWindows()  # dialogs too; the main window's closeEvent saves and joins
            self.app.quit()

    def close(self) -> None:
        """Put back the handlers and wake-up descriptor found at the start. Idempotent."""
        if self._notifier is None:
            return
        self._notifier.setEnabled(False)
        self._notifier = None
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._read.close()
        self._write.close()


def app_main(argv: list[str] | None = None) -> int:
    """Parse the options, open the window, run the event loop. Returns the exit code when no window
    opened (``--list-layers``, a usage error); once the window has closed, ends the process with
    :func:`end_process` (code 130 or 143 after SIGINT or SIGTERM: see :class:`StopSignals`)."""
    previous = {sig: signal.signal(sig, _stop_before_window) for sig in STOP_SIGNALS}
    try:
        return _app_main(argv)
    except _Stopped as exc:  # before the window opened: nothing to save or join
        end_process(128 + exc.signum)
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)


def _app_main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        w, h = (int(v) for v in args.demo_size.lower().split("x"))
    except ValueError:
        parser.error(f"--demo-size must look like 640x480. Got {args.demo_size!r}")

    import torch
    from PyQt5.QtCore import QSettings

    quiet_native_logs()
    torch.set_num_threads(args.threads if args.threads > 0 else network_threads())
    if args.list_layers:  # no window: the layers of the model the options name
        try:
            with pipes_may_close():  # `--list-layers | head`
                list_layers(engine_config_from_args(args, typed_options(parser, argv)))
        except EigenCamError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    from PyQt5.QtCore import QTimer
    from PyQt5.QtWidgets import QApplication

    from .window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    # From here a stop signal waits for the event loop, which closes the window (a signal that
    # arrives while the window is being built is acted on as soon as the loop starts).
    stops = StopSignals(app)
    apply_dark_theme(app)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    settings = None if args.no_settings else QSettings(ORGANIZATION, APPLICATION)
    typed = typed_options(parser, argv)  # what was typed beats remembered settings
    try:
        engine, render = configs_from(args, typed, settings)
    except EigenCamError as exc:
        stops.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        _check_named_source(args.source)
    except EigenCamError as exc:
        stops.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = args.source or (remembered.load_source(settings) if settings is not None else None) or default_source()
    # what the command line named must be had: a mistake there ends the app, not a stand-in
    required = frozenset(typed & {f.name for f in fields(EngineConfig)}) | ({"source"} if args.source else set())
    window = MainWindow(engine, render, source, settings=settings, snapshot_dir=args.snapshots,
                        demo_size=(w, h), demo_fps=args.demo_fps, required=required)
    if settings is None or remembered.load_geometry(settings) is None:  # a remembered geometry wins
        # The controls fit without scrolling at 1480x1000; never larger than the screen's free area.
        screen = app.primaryScreen().availableGeometry() if app.primaryScreen() else None
        window.resize(min(1480, screen.width()) if screen else 1480, min(1000, screen.height()) if screen else 1000)
    window.show()
    close_splash(window)  # (it waits for the window on screen, running events: a fatal error may close it)
    QTimer.singleShot(0, window.fit_on_screen)  # its frame (the title bar) is known once shown
    if args.screenshot:  # used to make docs/screenshot.png: wait for frames, grab, quit
        _grab_after_frames(window, args.screenshot, app)
    # a window closed before the loop runs would never end it (--device cuda without a GPU hung, a trial)
    code = app.exec_() if window.isVisible() else 0
    window.close()  # idempotent: settings saved, threads joined, the recording finished
    end_process(stops.exit_code or (2 if window.fatal_error else code))


def _check_named_source(spec: str | None) -> None:
    """Open and close a file or folder the command line names, before any window: one that cannot
    be read (a text file named .mp4) opened a window that vanished after the model had loaded,
    seconds later, saying why only on stderr (a trial). Cameras and streams are left to the
    window (opening one twice costs seconds, and a server may be slow to answer)."""
    from eigencam_live.video import STREAM_SCHEMES, open_source

    text = (spec or "").strip()
    if not text or text.isdigit() or text.lower() in ("demo", "scene") or text.lower().startswith(STREAM_SCHEMES):
        return
    open_source(text).close()


def apply_dark_theme(app) -> None:
    """Fusion with a dark palette: heatmaps read best on a dark surround."""
    from PyQt5.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    p = QPalette()
    base, window, text = QColor(30, 31, 34), QColor(43, 44, 48), QColor(222, 222, 226)
    for role, colour in [
        (QPalette.Window, window), (QPalette.WindowText, text), (QPalette.Base, base),
        (QPalette.AlternateBase, window), (QPalette.ToolTipBase, window), (QPalette.ToolTipText, text),
        (QPalette.Text, text), (QPalette.Button, QColor(55, 56, 61)), (QPalette.ButtonText, text),
        (QPalette.Highlight, QColor(64, 128, 220)), (QPalette.HighlightedText, QColor(255, 255, 255)),
        (QPalette.Link, QColor(100, 160, 255)),
    ]:
        p.setColor(role, colour)
    for role in (QPalette.Text, QPalette.ButtonText, QPalette.WindowText):
        p.setColor(QPalette.Disabled, role, QColor(120, 120, 125))
    app.setPalette(p)


def _grab_after_frames(window, path: str, app, frames: int = 60) -> None:
    from PyQt5.QtCore import QTimer

    def check() -> None:
        if window.frames_displayed >= frames or (window.paused and window.frames_displayed >= 1):  # (a folder opens paused)
            window.grab().save(path)
            window.close()
            app.quit()
        else:
            QTimer.singleShot(100, check)

    QTimer.singleShot(100, check)
