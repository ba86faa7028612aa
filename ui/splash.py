"""The app's first second: is there a display, and a splash while torch loads.

Importing torch takes about 4 s on a 2-core laptop, and the window could only be made after it: a
live demo's audience saw nothing happen for 5 s after a double click (a trial), and on a machine
without a display the app learnt so only then, from Qt, in six lines and an abort. This module
imports Qt alone, so ``main.py`` can say both at once, before anything heavy is imported.
"""

from __future__ import annotations

import os
import sys

__all__ = ["NoDisplayError", "close_splash", "no_display", "show_splash"]

#: Options after which no window opens: no splash for them.
_NO_WINDOW = ("-h", "--help", "--list-layers")

_splash = None  # the splash on screen (a reference kept: Qt would delete it with its wrapper)
_app = None  # the application made for it, kept as long (its wrapper gone, Qt deleted it and every widget)


class NoDisplayError(Exception):
    """No display to open the window on."""


def no_display(environ=None) -> str | None:
    """Why no window can open here, or ``None``. Only where X11 or Wayland is the display (Linux and
    the BSDs) and nothing names one; Qt's platform (``QT_QPA_PLATFORM``: offscreen, vnc...) chosen
    by hand is trusted."""
    env = os.environ if environ is None else environ
    if sys.platform in ("darwin", "win32") or env.get("QT_QPA_PLATFORM") or env.get("WAYLAND_DISPLAY"):
        return None
    how = "run it on a desktop, under ssh -X or xvfb-run, or annotate headless with `python main.py annotate INPUT`"
    if not env.get("DISPLAY"):
        return f"no display to open the app's window on (neither DISPLAY nor WAYLAND_DISPLAY is set): {how}"
    if not _x_server_answers(env["DISPLAY"]):  # (Qt aborted, exit 134, in six lines: a lost ssh -X, a trial)
        return f"no X server answers at DISPLAY={env['DISPLAY']}: {how}"
    return None


def _x_server_answers(display: str) -> bool:
    """Whether an X server takes a connection at ``display`` (``:0``, ``:1.0``, ``host:10.0``):
    its socket, or its abstract one (a sandbox without /tmp/.X11-unix), or TCP port 6000 + N; a
    form this does not read is given the benefit of the doubt."""
    import socket

    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit() or "/" in host:  # (macOS's launchd path, or another form: Qt will say)
        return True
    if host in ("", "unix"):
        tries = [(socket.AF_UNIX, f"/tmp/.X11-unix/X{number}"), (socket.AF_UNIX, f"\0/tmp/.X11-unix/X{number}")]
    else:
        tries = [(socket.AF_INET, (host, 6000 + int(number)))]
    for family, address in tries:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(address)
            return True
        except OSError:
            continue
    return False


def _opens_window(argv: list[str]) -> bool:
    for arg in argv:
        if arg == "--":
            break
        option = arg.partition("=")[0]
        # argparse takes any unambiguous start of a long option: --list-l is --list-layers
        if option in ("-h", "--help") or (len(option) > len("--li") and "--list-layers".startswith(option)):
            return False
    return True


def _safe_before_torch(environ=None) -> bool:
    """Whether a window may open before torch's libraries load. X11's OpenGL integration loads the
    system's LLVM (Mesa's), and Triton's own LLVM, which torchvision loads later, then crashed the
    process (a segfault under Xvfb). The app draws without OpenGL, so on X11 the integration is left
    out (``QT_XCB_GL_INTEGRATION=none``) unless the user chose one; elsewhere on Linux (Wayland,
    EGL) there is no splash, as there was none before; nor on Windows, where torch 2.9 and later
    fail to load their DLLs once Qt's are loaded (WinError 1114, pytorch#166628; a review)."""
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        return False
    if sys.platform == "darwin":
        return True
    if env.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return True
    if env.get("QT_QPA_PLATFORM", "xcb") != "xcb" or not env.get("DISPLAY"):  # Wayland's own platform
        return False
    env.setdefault("QT_XCB_GL_INTEGRATION", "none")
    return env["QT_XCB_GL_INTEGRATION"] == "none"


def show_splash(argv: list[str]) -> None:
    """Before torch is imported: raise :class:`NoDisplayError` where no window can open, else show
    a splash (the app's name, "starting…") until :func:`close_splash`. Nothing for options that
    open no window (``--help``, ``--list-layers``)."""
    global _app, _splash
    if not _opens_window(argv):
        return
    reason = no_display()
    if reason:
        raise NoDisplayError(reason)
    if not _safe_before_torch():
        return
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QColor, QFont, QPainter, QPixmap
    from PyQt5.QtWidgets import QApplication, QSplashScreen

    app = _app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    ratio = app.devicePixelRatio()
    pixmap = QPixmap(int(460 * ratio), int(150 * ratio))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(QColor(30, 31, 34))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setRenderHint(QPainter.TextAntialiasing)
    # a heatmap's colours under the name: what the app is about, before any frame
    for i, colour in enumerate(("#30123b", "#4686fb", "#1ae4b6", "#a2fc3c", "#fabb39", "#e4460a", "#7a0403")):
        painter.fillRect(24 + i * 58, 112, 58, 6, QColor(colour))
    title = QFont()
    title.setPointSize(20)
    title.setBold(True)
    painter.setFont(title)
    painter.setPen(QColor(235, 235, 238))
    painter.drawText(24, 24, 412, 44, Qt.AlignLeft | Qt.AlignVCenter, "eigencam-live")
    text = QFont()
    text.setPointSize(10)
    painter.setFont(text)
    painter.setPen(QColor(170, 170, 176))
    painter.drawText(24, 70, 412, 30, Qt.AlignLeft | Qt.AlignVCenter, "Starting: loading PyTorch…")
    painter.end()
    _splash = QSplashScreen(pixmap)
    _splash.show()
    app.processEvents()  # painted now: the imports that follow keep the event loop from running


def close_splash(window=None) -> None:
    """Close the splash, if one is up (once ``window``, when given, is shown). Idempotent."""
    global _splash
    if _splash is None:
        return
    if window is not None:
        _splash.finish(window)
    else:
        _splash.close()
    _splash.deleteLater()
    _splash = None
